#pragma once
// The UCE asset directory in the public release's layout (UCE_SPEC section 1):
//   species_offsets.pkl, species_chrom.csv, protein_embeddings/<Species>...ESM2.pt,
//   all_tokens.torch (optional when the state dict carries pe_embedding), and for our own
//   bundles an optional manifest.json (token_dim, chrom_token_offset, nhead, embedding files).
#include <ATen/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace uce::model {

struct SpeciesTokens {
  std::string name;
  int64_t offset = 0;             // first token row of this species
  std::string embeddingFile;      // protein_embeddings/<...>.pt
  std::vector<std::string> genes; // upper-cased symbols in the .pt key order (token = offset + i)
  std::unordered_map<std::string, int32_t> index;                    // symbol -> i
  std::unordered_map<std::string, std::pair<int32_t, int64_t>> chromPos; // symbol -> (code, start)
};

class AssetBundle {
 public:
  // Reads offsets, chromosome table and manifest; protein embeddings load per species on use.
  explicit AssetBundle(std::string dir);

  const std::string& dir() const { return dir_; }
  int64_t chromTokenOffset() const { return chromTokenOffset_; }
  int64_t nChromCodes() const { return nChromCodes_; }
  int64_t manifestTokenDim() const { return tokenDim_; }  // 0 when unknown
  int64_t manifestNhead() const { return nhead_; }        // 0 when unknown
  std::vector<std::string> speciesNames() const;
  // Throws uce::Error(InvalidArgument) listing the known species.
  const SpeciesTokens& species(const std::string& name);
  // all_tokens.torch [n_tokens, token_dim], undefined tensor when the file is absent.
  at::Tensor tokenTable() const;
  bool hasTokenTable() const;

 private:
  std::string dir_;
  int64_t chromTokenOffset_ = 143574;
  int64_t nChromCodes_ = 0;
  int64_t tokenDim_ = 0, nhead_ = 0;
  std::map<std::string, int64_t> offsets_;
  std::map<std::string, std::string> files_;
  // species -> rows of species_chrom.csv: symbol -> (chromosome code, start)
  std::map<std::string, std::unordered_map<std::string, std::pair<int32_t, int64_t>>> chrom_;
  std::map<std::string, std::unique_ptr<SpeciesTokens>> loaded_;
};

// Protein-embedding file names of the public release, by species.
const std::map<std::string, std::string>& releaseEmbeddingFiles();

}  // namespace uce::model
