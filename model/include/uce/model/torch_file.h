#pragma once
// Reading the public UCE release's files without Python: torch.save zip archives (state dicts,
// the token table, protein-embedding dicts) and plain pickles (species_offsets.pkl).
// A restricted unpickler interprets only the opcodes these files use and accepts only the
// globals collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter and the
// torch.*Storage types; it executes no code, so an untrusted file cannot run anything.
// Debian's LibTorch 1.13 torch::pickle_load asserts on OrderedDict, hence this reader.
#include <ATen/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace uce::model {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;  // in file order

// A torch.save'd dict (or OrderedDict) of str -> tensor, e.g. a state_dict or a
// protein-embedding file. Throws uce::Error naming the file on anything unexpected.
NamedTensors loadTensorDict(const std::string& path);
// A torch.save'd single tensor, e.g. all_tokens.torch.
at::Tensor loadTensor(const std::string& path);
// Bytes of torch.save(dict) for named tensors (Python's torch.load gives a dict in this key
// order, e.g. a state dict in the release's format). Holds only the globals torch.save itself
// uses, so restricted unpicklers (ours included) read it.
std::string torchSaveTensorDict(const NamedTensors& tensors);
// Bytes of torch.save(tensor).
std::string torchSaveTensor(const at::Tensor& tensor);
// Writes torchSaveTensorDict(tensors) to path atomically (temp file, fsync, rename).
void saveTensorDict(const NamedTensors& tensors, const std::string& path);

// A plain pickle (protocol 2-5) of dict str -> int, e.g. species_offsets.pkl.
std::vector<std::pair<std::string, int64_t>> loadStrIntPickle(const std::string& path);

}  // namespace uce::model
