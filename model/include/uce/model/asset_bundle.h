#pragma once
// Serialising a UCE asset bundle in the public release's formats: the torch.save files
// (protein_embeddings/*.pt, all_tokens.torch) written here with LibTorch, the text files by
// uce_core (writeSynthTextAssets). Python's torch.load reads every file this writes.
#include <cstdint>
#include <string>
#include <vector>

#include "uce/core/synth.h"

namespace uce::model {

// Bytes of torch.save(dict) for a plain dict {key: float32 tensor [dim]} in the given key
// order (Python 3.7+ dicts keep it). data: [keys, dim] row-major. The pickle holds no type
// tags, only the globals torch.save itself uses (_rebuild_tensor_v2, FloatStorage,
// collections.OrderedDict), so restricted unpicklers read it.
std::string torchSaveEmbeddingDict(const std::vector<std::string>& keys, const float* data,
                                   int64_t dim);
// Bytes of torch.save(tensor) for one float32 tensor [rows, cols]; data row-major.
std::string torchSaveMatrix(const float* data, int64_t rows, int64_t cols);

// Writes the whole bundle into dir (created if needed), each file atomically:
//   protein_embeddings/<Species>.<assembly>.gene_symbol_to_embedding_ESM2.pt
//   all_tokens.torch   [gene tokens + chromosome tokens, token_dim] float32, in offset order
//   species_chrom.csv, species_offsets.pkl, manifest.json
// Returns the written paths.
std::vector<std::string> writeAssetBundle(const SynthAssets& assets, const std::string& dir);

}  // namespace uce::model
