#include "uce/core/error.h"

namespace uce {

const char* errorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Io: return "io";
    case ErrorKind::NotHdf5: return "not-hdf5";
    case ErrorKind::Truncated: return "truncated";
    case ErrorKind::MissingMatrix: return "missing-matrix";
    case ErrorKind::Shape: return "shape";
    case ErrorKind::BadIndex: return "bad-index";
    case ErrorKind::NegativeValue: return "negative-value";
    case ErrorKind::NotFinite: return "not-finite";
    case ErrorKind::NotCounts: return "not-counts";
    case ErrorKind::DuplicateGenes: return "duplicate-genes";
    case ErrorKind::Empty: return "empty";
    case ErrorKind::Format: return "format";
    case ErrorKind::Unsupported: return "unsupported";
    case ErrorKind::InvalidArgument: return "invalid-argument";
    case ErrorKind::Cancelled: return "cancelled";
  }
  return "unknown";
}

void fail(ErrorKind kind, const std::string& file, const std::string& message) {
  throw Error(kind, file, file.empty() ? message : file + ": " + message);
}

}  // namespace uce
