#pragma once
// SHA-256 of a file, for provenance (which model file made these embeddings).
#include <string>

namespace uce {
// Lower-case hex digest. Throws uce::Error(Io) naming the file when it cannot be read.
std::string sha256File(const std::string& path);
// Digest of a byte string.
std::string sha256(const std::string& bytes);
}  // namespace uce
