#pragma once
// Where the CLI finds the data files it ships with. Installed (the .deb: /usr/bin/uce beside
// /usr/share/uce-atlas/) they sit at <prefix>/share/uce-atlas/; in a build tree, at the path
// CMake compiled in (the source tree's resources/).
#include <string>

namespace uce::cli {

// <prefix>/share/uce-atlas/<relative> when the running executable is <prefix>/bin/uce and that
// file exists there; otherwise buildTreePath (returned as is, even when it does not exist, so
// the caller's error names the file it looked for).
std::string resourcePath(const std::string& relative, const std::string& buildTreePath);

}  // namespace uce::cli
