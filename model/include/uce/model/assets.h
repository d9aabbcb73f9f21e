#pragma once
// The UCE asset directory in the public release's layout (UCE_SPEC section 1):
//   species_offsets.pkl, species_chrom.csv, protein_embeddings/<Species>...ESM2.pt,
//   all_tokens.torch (optional when the state dict carries pe_embedding), and for our own
//   bundles an optional manifest.json (token_dim, chrom_token_offset, nhead, embedding files).
// Species added after the release (uce add-species, new_species.h) are listed in
// new_species.csv; each has its own <species>_to_chrom_pos.csv and chromosome-token rows, as the
// release's new-species recipe makes them, so adding one never changes another's tokens.
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
  int64_t chromTokenOffset = 0;   // chromosome-start token = chromTokenOffset + code
};

// One row of new_species.csv: a species appended to the token table after the release.
//   species, path (its protein-embedding .pt, relative to the bundle), chrom_file (its
//   gene_symbol/chromosome/start CSV), offset (first gene row), chrom_token_offset,
//   n_chrom_tokens, seed (torch.manual_seed of its chromosome rows), source_sha256 (inputs).
struct AddedSpecies {
  std::string name, embeddingFile, chromFile;
  int64_t offset = 0, chromTokenOffset = 0, chromTokens = 0;
  uint64_t seed = 0;
  std::string sourceSha256;
};

// One row of a gene-position CSV, symbol upper-cased.
struct GenePosition {
  std::string symbol, chromosome;
  int64_t start = 0;
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
  // Rows of new_species.csv, in file (= token) order; empty for a release bundle.
  const std::vector<AddedSpecies>& addedSpecies() const { return added_; }

 private:
  const SpeciesTokens& loadAdded(const AddedSpecies& added);
  std::string dir_;
  int64_t chromTokenOffset_ = 143574;
  int64_t nChromCodes_ = 0;
  int64_t tokenDim_ = 0, nhead_ = 0;
  std::map<std::string, int64_t> offsets_;
  std::map<std::string, std::string> files_;
  // species -> rows of species_chrom.csv: symbol -> (chromosome code, start)
  std::map<std::string, std::unordered_map<std::string, std::pair<int32_t, int64_t>>> chrom_;
  std::map<std::string, std::unique_ptr<SpeciesTokens>> loaded_;
  std::vector<AddedSpecies> added_;
};

// A token table as the release uses it: one with exactly chromTokenOffset rows lacks the
// chromosome rows, and the release appends 1895 N(0,1) rows drawn after torch.manual_seed(23).
at::Tensor withChromosomeRows(at::Tensor table, int64_t chromTokenOffset);

// Reads a gene-position CSV (the release's <species>_to_chrom_pos.csv): columns gene_symbol,
// chromosome and start (any order, more allowed); when it has a species column, only the rows
// of `species` are kept. Throws uce::Error(Format) naming the file, column or line at fault.
std::vector<GenePosition> readGenePositions(const std::string& path, const std::string& species);

// Chromosome codes of one species' positions: index of each chromosome among the sorted unique
// chromosome names (= the pandas categorical codes of species + "_" + chromosome).
std::vector<std::string> sortedChromosomes(const std::vector<GenePosition>& rows);

// Protein-embedding file names of the public release, by species.
const std::map<std::string, std::string>& releaseEmbeddingFiles();

}  // namespace uce::model
