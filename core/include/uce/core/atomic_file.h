#pragma once
// Crash-safe whole-file writes: the bytes go to "<path>.tmp-<pid>", are fsync'ed, and the
// temporary file is renamed over path, so a reader sees the old file or the new one, never half.
#include <cstddef>
#include <functional>
#include <string>

namespace uce {

// Throws uce::Error(Io) naming path when the file cannot be written.
void writeFileAtomic(const std::string& path, const std::string& bytes);

// The same for a file produced in pieces: `produce` calls `write` with each piece in order, so
// the whole file never sits in memory. If produce throws, the temporary file is removed and the
// exception passes on; path is untouched.
using ByteSink = std::function<void(const void* data, size_t n)>;
void writeFileAtomic(const std::string& path, const std::function<void(const ByteSink& write)>& produce);

}  // namespace uce
