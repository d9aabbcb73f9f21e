#pragma once
// Crash-safe whole-file writes: the bytes go to "<path>.tmp-<pid>", are fsync'ed, and the
// temporary file is renamed over path, so a reader sees the old file or the new one, never half.
#include <string>

namespace uce {

// Throws uce::Error(Io) naming path when the file cannot be written.
void writeFileAtomic(const std::string& path, const std::string& bytes);

}  // namespace uce
