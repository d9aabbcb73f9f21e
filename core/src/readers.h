#pragma once
// Reader factories behind openDataset(); one file per format.
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

// Throws Empty when there are no cells or genes, DuplicateGenes when var names repeat
// (naming the first repeated gene), Shape when obs/var lengths disagree with the matrix.
void validateShape(const std::string& file, const DataFrame& obs, const DataFrame& var,
                   int64_t rows, int64_t cols, const std::string& key);

}  // namespace uce
