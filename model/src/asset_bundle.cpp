#include "uce/model/asset_bundle.h"

#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickler.h>

#include <filesystem>

#include "uce/core/error.h"

namespace uce::model {

namespace {

// torch::pickle_save, but without the "torch.jit._pickle.restore_type_tag" wrappers it puts
// around dicts: Python's torch.save of a plain dict writes none, and restricted unpicklers
// (ours included) refuse that global.
std::string torchSave(const c10::IValue& value) {
  std::vector<char> pickle;
  torch::jit::Pickler pickler(
      [&](const char* buf, size_t n) { pickle.insert(pickle.end(), buf, buf + n); },
      /*tensor_table=*/nullptr, /*type_renamer=*/nullptr, /*memoized_class_types=*/nullptr,
      /*get_tensor_id=*/nullptr, /*tag_aggregates=*/false);
  pickler.protocol();
  pickler.pushIValue(value);
  pickler.stop();
  std::string out;
  {
    caffe2::serialize::PyTorchStreamWriter writer([&](const void* buf, size_t n) -> size_t {
      out.append(static_cast<const char*>(buf), n);
      return n;
    });
    torch::jit::writeArchiveAndTensors("data", pickle.data(), pickle.size(), pickler.tensorData(),
                                       writer);
    writer.writeEndOfFile();
  }
  return out;
}

}  // namespace

std::string torchSaveEmbeddingDict(const std::vector<std::string>& keys, const float* data,
                                   int64_t dim) {
  c10::Dict<std::string, at::Tensor> dict;
  dict.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    // One storage per gene, as the release has (no views into a shared buffer).
    at::Tensor t = torch::from_blob(const_cast<float*>(data + static_cast<int64_t>(i) * dim), {dim},
                                    torch::kFloat32)
                       .clone();
    dict.insert(keys[i], std::move(t));
  }
  return torchSave(c10::IValue(dict));
}

std::string torchSaveMatrix(const float* data, int64_t rows, int64_t cols) {
  at::Tensor t = torch::from_blob(const_cast<float*>(data), {rows, cols}, torch::kFloat32).clone();
  return torchSave(c10::IValue(t));
}

std::vector<std::string> writeAssetBundle(const SynthAssets& a, const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(fs::path(dir) / "protein_embeddings", ec);
  if (ec) fail(ErrorKind::Io, dir, "cannot create the asset folder (" + ec.message() + ")");
  std::vector<std::string> written;
  const int64_t D = a.tokenDim;
  for (const auto& s : a.species) {
    if (static_cast<int64_t>(s.embeddings.size()) != static_cast<int64_t>(s.tokens.size()) * D)
      fail(ErrorKind::Shape, dir, "embeddings of species '" + s.name + "' do not match its gene list");
    const std::string path = (fs::path(dir) / a.embeddingFile(s)).string();
    writeFileAtomic(path, torchSaveEmbeddingDict(s.tokens, s.embeddings.data(), D));
    written.push_back(path);
  }
  // all_tokens: gene rows in offset order, then the chromosome rows.
  const int64_t rows = a.totalTokens();
  std::vector<float> all;
  all.reserve(static_cast<size_t>(rows * D));
  for (const auto& s : a.species) all.insert(all.end(), s.embeddings.begin(), s.embeddings.end());
  all.insert(all.end(), a.chromEmbeddings.begin(), a.chromEmbeddings.end());
  if (static_cast<int64_t>(all.size()) != rows * D)
    fail(ErrorKind::Shape, dir, "chromosome token rows do not match the chromosome list");
  const std::string tokens = (fs::path(dir) / "all_tokens.torch").string();
  writeFileAtomic(tokens, torchSaveMatrix(all.data(), rows, D));
  written.push_back(tokens);
  writeSynthTextAssets(a, dir);
  for (const char* f : {"species_chrom.csv", "species_offsets.pkl", "manifest.json"})
    written.push_back((fs::path(dir) / f).string());
  return written;
}

}  // namespace uce::model
