#pragma once
// Typed errors with messages a biologist can act on. Every error that concerns a file names it.
#include <stdexcept>
#include <string>

namespace uce {

enum class ErrorKind {
  Io,              // cannot open / read / write / rename
  NotHdf5,         // file is not an HDF5 container
  Truncated,       // file ends early or an object cannot be read
  MissingMatrix,   // no X (or the chosen layer) in the file
  Shape,           // inconsistent shapes between X, obs, var, obsm
  BadIndex,        // indptr not monotone / indices out of range
  NegativeValue,   // negative counts
  NotFinite,       // NaN or Inf values
  NotCounts,       // non-integer values where raw counts are required
  DuplicateGenes,  // duplicate gene names
  Empty,           // zero cells or zero genes
  Format,          // malformed text file (MTX, CSV, pickle, ...)
  Unsupported,     // valid file, but an encoding we do not read
  InvalidArgument, // bad option from the user
  Cancelled,       // user pressed cancel
};

const char* errorKindName(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  // message: full text shown to the user; should already name the file when there is one.
  Error(ErrorKind kind, std::string file, const std::string& message)
      : std::runtime_error(message), kind_(kind), file_(std::move(file)) {}
  ErrorKind kind() const { return kind_; }
  const std::string& file() const { return file_; }

 private:
  ErrorKind kind_;
  std::string file_;
};

// Builds "FILE: message" and throws uce::Error.
[[noreturn]] void fail(ErrorKind kind, const std::string& file, const std::string& message);

}  // namespace uce
