#pragma once
// Cell sentences (UCE_SPEC section 3): from one cell's raw counts to the token sequence the
// network reads. Reproducible: a cell's sentence depends only on (seed, cell index), never on
// batch size or thread count. No LibTorch here, so it is cheap to compile and test.
#include <cstdint>
#include <string>
#include <vector>

namespace uce::model {

// Special tokens of the public release.
constexpr int32_t kPadToken = 0;
constexpr int32_t kChromOpenToken = 1;  // unused by the release
constexpr int32_t kChromCloseToken = 2;
constexpr int32_t kClsToken = 3;

struct SentenceOptions {
  int sampleSize = 1024;            // genes drawn per cell, with replacement
  int padLength = 1536;             // sentence buffer length (positions of the model)
  int64_t chromTokenOffset = 143574;  // first chromosome token
  uint64_t seed = 0;
  // Training only (uce train --equal-lengths; the embedder leaves it 0, the release's sentence):
  // after the sampleSize draws, further draws fill the sentence to exactly this many tokens.
  // A draw on a chromosome already present adds 1 token, one on a new chromosome 3 (opening,
  // gene, closing), and is drawn again when fewer than 3 tokens are left. With a fixedLength
  // of 1 + sampleSize + 2 x (the species' chromosomes), every sentence reaches it exactly, so
  // a training micro-batch needs no padding and no attention mask.
  int fixedLength = 0;
};

// A dataset's genes as the tokenizer sees them: for each input column, its token, chromosome
// code and genomic start; token < 0 marks a column without a protein embedding (ignored).
struct GeneTable {
  std::vector<int32_t> token;   // [genes]
  std::vector<int32_t> chrom;   // [genes] chromosome code (UCE_SPEC section 2)
  std::vector<int64_t> start;   // [genes]
  // Filled by finalize(): genomic rank of each matched column (order by chrom, start, column).
  std::vector<int32_t> rank;    // [genes], -1 when unmatched
  std::vector<int32_t> byRank;  // [matched] column of each rank
  std::vector<int32_t> tokenByRank, chromByRank;  // [matched] token / chromosome of each rank
  void finalize();
  int64_t matched() const { return static_cast<int64_t>(byRank.size()); }
};

// Reusable per-thread buffers for building sentences.
class SentenceBuilder {
 public:
  SentenceBuilder(const GeneTable& genes, const SentenceOptions& options);
  // cols/vals: one cell's stored entries (any column order). cellIndex: the cell's row in the
  // input (the RNG stream). Writes padLength tokens to out (CLS, chromosome groups, padding)
  // and returns the number of real tokens; 0 when the cell has no matched expressed gene.
  int build(const int32_t* cols, const float* vals, int64_t n, uint64_t cellIndex, int32_t* out);

 private:
  const GeneTable& genes_;
  SentenceOptions opt_;
  std::vector<float> weightByRank_;     // [matched], zero outside the current cell
  std::vector<uint64_t> rankBits_;      // bitmap of the current cell's ranks, zero between cells
  std::vector<int32_t> cellRanks_;      // the cell's expressed genes, in genomic order
  std::vector<float> weights_;          // their log1p weights
  std::vector<double> aliasProb_;       // alias table (Vose)
  std::vector<int32_t> alias_, small_, large_;
  std::vector<uint16_t> draws_;         // draws per expressed gene of the cell
  std::vector<int32_t> groupStart_, groupOrder_;
  std::vector<int32_t> groupOf_;        // fixedLength: chromosome group of each expressed gene
  std::vector<uint8_t> groupHas_;       // fixedLength: whether the group has a draw
};

// 64-bit counter-based generator: the stream of (seed, cell) is independent of any other cell.
class CellRng {
 public:
  CellRng(uint64_t seed, uint64_t cell);
  uint64_t next();
  double uniform();                  // [0, 1)
  uint64_t below(uint64_t n);        // [0, n)

 private:
  uint64_t s_[4];
};

}  // namespace uce::model
