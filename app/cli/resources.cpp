#include "resources.h"

#include <filesystem>
#include <system_error>

namespace uce::cli {

std::string resourcePath(const std::string& relative, const std::string& buildTreePath) {
  namespace fs = std::filesystem;
  std::error_code ec;
  // /proc/self/exe names the binary itself, wherever it was started from (PATH, a symlink).
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = exe.parent_path().parent_path() / "share" / "uce-atlas" / relative;
    if (fs::is_regular_file(installed, ec)) return installed.string();
  }
  return buildTreePath;
}

}  // namespace uce::cli
