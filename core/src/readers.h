#pragma once
// Reader factories behind openDataset(); one file per format.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "uce/core/dataset.h"

namespace uce {

std::unique_ptr<Dataset> openH5ad(const std::string& path);        // h5ad_reader.cpp
std::unique_ptr<Dataset> openTenxH5(const std::string& path);       // tenx_reader.cpp
std::unique_ptr<Dataset> openMtxDir(const std::string& path);       // mtx_reader.cpp
std::unique_ptr<Dataset> openDelimited(const std::string& path,     // delimited_reader.cpp
                                       bool genesAsRows);

// Checks a block a reader produced: indptr monotone from 0 and ending at nnz, indices in
// [0, ncols), values finite. Throws BadIndex / NotFinite naming file and matrix key.
void validateBlock(const std::string& file, const std::string& key, const CsrBlock& block);
// The two halves of validateBlock, for readers that check entries slice by slice while they
// are still in cache: validateIndptr throws as validateBlock does for indptr; entriesValid is
// true when every index is in [0, ncols) and every value finite (call validateBlock on the
// block when it is false, for the message).
void validateIndptr(const std::string& file, const std::string& key, const CsrBlock& block);
bool entriesValid(const int32_t* indices, const float* values, size_t n, int64_t ncols);
// The two halves of entriesValid, for readers that fill indices and values on two threads:
// true when every index is in [0, ncols); true when every value is finite.
bool indicesInRange(const int32_t* indices, size_t n, int64_t ncols);
bool valuesFinite(const float* values, size_t n);

// Throws Empty when there are no cells or genes, DuplicateGenes when var names repeat
// (naming the first repeated gene), Shape when obs/var lengths disagree with the matrix.
void validateShape(const std::string& file, const DataFrame& obs, const DataFrame& var,
                   int64_t rows, int64_t cols, const std::string& key);

}  // namespace uce
