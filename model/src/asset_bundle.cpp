#include "uce/model/asset_bundle.h"

#include <filesystem>

#include "uce/core/error.h"
#include "uce/model/torch_file.h"

namespace uce::model {

std::string torchSaveEmbeddingDict(const std::vector<std::string>& keys, const float* data,
                                   int64_t dim) {
  NamedTensors dict;
  dict.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    // One storage per gene, as the release has (no views into a shared buffer).
    dict.emplace_back(keys[i], torch::from_blob(const_cast<float*>(data + static_cast<int64_t>(i) * dim), {dim},
                                                torch::kFloat32)
                                   .clone());
  }
  return torchSaveTensorDict(dict);
}

std::string torchSaveMatrix(const float* data, int64_t rows, int64_t cols) {
  return torchSaveTensor(torch::from_blob(const_cast<float*>(data), {rows, cols}, torch::kFloat32));
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
