#pragma once
// Synthetic single-cell atlas: the project's own test world, since no public data or weights
// can be downloaded. Several .h5ad datasets (species x tissue) with realistic counts, plus the
// contents of a matching UCE asset bundle (gene lists, protein-like embeddings, chromosome
// positions) in the public release's layout. Everything follows from the seed.
//
// The world
//  * species: human (real symbols and positions from a gene-position CSV) and mouse
//    (Title-case symbols; ~85% are homologs of human genes, the rest mouse-only "Gm..."/"...Rik"
//    genes; chromosomes remapped from the human ones in 40 Mb segments).
//  * tissues: kidney, lung, heart; 3 batches (donors) per dataset with library-size factors
//    0.6 / 1.0 / 1.6; the third is diseased (chronic kidney disease, pulmonary fibrosis, heart
//    failure: 30 genes up 2.7x, and EPO down 4.5x in kidney Norn cells).
//  * obs: cell_type, coarse_cell_type, tissue, species, batch, disease (categorical); var:
//    index = gene symbols, gene_ids (synthetic Ensembl-like ids); uns["synth"]: seed, version,
//    generator, dataset. Human var is in genome order, mouse var alphabetical: neither is the
//    token order, as in real files.
//  * 22 cell types under 5 coarse types (immune, epithelial, endothelial, stromal, muscle).
//    A type's expression profile = gene baseline + coarse program + fine program (log-additive;
//    named markers such as CD3E, LRP2, SFTPC, TNNT2 reach the top ~2% of genes in their type),
//    with 2% ambient RNA of its tissue. Ribosomal/housekeeping genes are the most expressed. A rare "Norn cell" population (fibroblast-like stromal
//    cells expressing DCN, LPAR1, COL1A1, CXCL12, CFH, CXCL14, EPO) is ~5% of kidney and ~0.5%
//    of lung and heart.
//  * counts: library size log-normal (median ~2,500 UMIs) x batch factor x cell-type size;
//    gene-specific batch factors (log-normal, sd 0.25); negative binomial per gene (size theta
//    ~ 4, CDF inversion below mean 8, gamma-Poisson above). Genes whose mean in a cell type is
//    < 0.1 are drawn as Poisson through one multinomial per cell (NB and Poisson differ by < 1%
//    in their zero probability there), which keeps 20,000-gene cells fast. The spread of gene
//    baselines is calibrated so that ~90% of entries are zero for 1,500-5,000 genes; with
//    20,000 genes the data are naturally sparser (~91-92%), as real droplet data are.
//  * protein embeddings: one N(0,1) vector per human gene; a mouse homolog gets its human
//    gene's vector plus noise (cosine 0.93-0.99); unrelated genes have cosine ~0.
//
// Determinism: cells are made in chunks; chunk k of dataset d draws from its own
// std::mt19937_64 seeded from (seed, d's name, k), with our own uniform/normal/gamma/Poisson
// samplers (std:: distributions differ between standard libraries). Output is identical for
// any thread count; across platforms it is identical where libm's exp/log agree.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "uce/core/atomic_file.h"

namespace uce {

struct SynthOptions {
  int64_t cells = 10000;        // total cells, split evenly over the datasets written
  int64_t genesPerSpecies = 5000;  // human: at most the rows of the gene-position CSV
  int64_t tokenDim = 256;       // length of each protein embedding
  uint64_t seed = 0;
  std::string genePositionsCsv;  // columns species,gene_symbol,chromosome,start (human rows)
  int64_t chunkCells = 4096;    // cells generated and written per block
  int threads = 2;              // generator threads (output does not depend on it)
  // Which datasets to write: empty = all. Species from {human, mouse}, tissues from
  // {kidney, lung, heart}.
  std::vector<std::string> species;
  std::vector<std::string> tissues;
  double zeroFraction = 0.90;   // target share of zero entries in X
  // On/off program genes: each coarse and each fine cell type switches on this many more
  // genes (drawn independently per type, so a gene may belong to several types), silent in
  // every other type. 0 keeps the classic world, whose types differ in a few markers and
  // moderate folds only.
  int64_t typeGenes = 0;
};

// One species' part of the asset bundle.
struct SynthSpeciesAssets {
  std::string name;          // "human", "mouse"
  std::string fileStem;      // "Homo_sapiens.GRCh38": protein_embeddings/<stem>.gene_symbol_to_embedding_ESM2.pt
  int64_t offset = 0;        // first row of this species in all_tokens
  // Upper-cased gene symbols in token order (= key order of the .pt dict). The release keys
  // are matched by upper-cased symbol, so storing them upper-cased is equivalent.
  std::vector<std::string> tokens;
  std::vector<float> embeddings;  // [tokens, tokenDim] float32, row-major
};

// One row of species_chrom.csv.
struct SynthChromRow {
  std::string species;
  std::string symbol;        // as the species writes it ("DCN", "Dcn")
  std::string chromosome;    // "1".."22", "X", "Y", "M" (human); "1".."19", "X", "Y", "MT" (mouse)
  int64_t start = 0;
};

// Everything in DIR/assets/ except its serialisation. core cannot write .pt files (no
// LibTorch): uce::model::writeAssetBundle does, and calls writeSynthTextAssets for the rest.
struct SynthAssets {
  int64_t tokenDim = 0;
  uint64_t seed = 0;
  std::vector<SynthSpeciesAssets> species;  // in offset order
  std::vector<SynthChromRow> chromRows;     // all species, token order
  std::vector<std::string> chromNames;      // sorted unique species+"_"+chromosome: code order
  std::vector<float> chromEmbeddings;       // [chromNames, tokenDim] N(0,1)
  int64_t geneTokens() const;               // sum of species' tokens = chrom_token_offset
  int64_t totalTokens() const { return geneTokens() + static_cast<int64_t>(chromNames.size()); }
  std::string embeddingFile(const SynthSpeciesAssets& s) const;  // relative to the assets dir
};

// Writes species_chrom.csv, species_offsets.pkl (pickle protocol 2) and manifest.json into dir
// (created if needed), each atomically.
void writeSynthTextAssets(const SynthAssets& assets, const std::string& dir);

struct SynthDatasetInfo {
  std::string name;     // "human_kidney"
  std::string path;     // DIR/human_kidney.h5ad
  std::string species, tissue;
  int64_t cells = 0, genes = 0, nnz = 0;
};

// progress(datasetName, cellsDone, cellsTotalInDataset); may be empty.
using SynthProgress = std::function<void(const std::string&, int64_t, int64_t)>;

class SynthAtlas {
 public:
  // Builds the world (genes, programs, embeddings). Throws Error(InvalidArgument) for bad
  // options and Error(Io/Format) for an unreadable gene-position CSV.
  explicit SynthAtlas(SynthOptions options);
  ~SynthAtlas();
  SynthAtlas(const SynthAtlas&) = delete;
  SynthAtlas& operator=(const SynthAtlas&) = delete;

  const SynthOptions& options() const;
  // Names of the datasets writeDatasets() produces, e.g. {"human_kidney", ...}.
  std::vector<std::string> datasetNames() const;
  // Writes <outDir>/<name>.h5ad for every selected dataset, streaming in chunks.
  std::vector<SynthDatasetInfo> writeDatasets(const std::string& outDir,
                                              const SynthProgress& progress = {}) const;
  const SynthAssets& assets() const;

  // Cell types: fine name, coarse name (for callers that need the labels).
  static std::vector<std::pair<std::string, std::string>> cellTypes();

 private:
  struct World;
  std::unique_ptr<World> world_;
};

}  // namespace uce
