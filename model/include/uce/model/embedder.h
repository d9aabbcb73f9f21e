#pragma once
// Zero-shot embedding of a dataset with a UCE model: streams cells from the input in chunks,
// builds cell sentences on worker threads, runs the network in batches on CPU or CUDA and
// writes obsm["X_uce"] (float32, [cells, output_dim]) to a new .h5ad (or in place).
// Progress is reported through a callback that can cancel; an interrupted run resumes from
// "<output>.uce-resume" when started again with the same options.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace uce::model {

struct EmbedOptions {
  std::string input;             // .h5ad, 10x .h5, MTX folder or CSV
  std::string output;            // .h5ad to write; == input (or inPlace) adds X_uce in place
  bool inPlace = false;
  std::string species = "human";
  std::string assetsDir;         // release layout: species_offsets.pkl, species_chrom.csv, ...
  std::string modelFile;         // state dict (torch.save); "" = <assetsDir>/model.torch
  int64_t nLayers = -1;          // -1 = from the weights; else must match them
  int64_t nHead = 0;             // 0 = manifest's value or 20 (the released models)
  int batchSize = 32;            // cells per forward pass
  std::string device = "auto";   // cpu | cuda | auto
  std::string precision = "fp32";  // fp32 | bf16 | bf16-autocast (CUDA only; see embedder.cpp)
  // CUDA attention kernels: auto (cuDNN for full batches, flash for a length group's last
  // batch), flash, or cudnn (LibTorch >= 2.5; otherwise LibTorch's own choice).
  std::string attentionKernels = "auto";
  uint64_t seed = 0;             // sentence sampling; a cell's sentence depends on (seed, row)
  std::string geneColumn;        // var column with gene symbols; "" = var_names
  std::string countsKey;         // "" = guess (layers/counts, raw/X, X)
  int sampleSize = 1024;
  int padLength = 1536;
  int minCellsPerGene = 10;      // release filter: genes seen in >= 10 cells
  int minGenesPerCell = 25;      // release filter: cells with >= 25 expressed genes
  int threads = 0;               // tokenizer threads; 0 = hardware concurrency
  int64_t chunkCells = 2048;     // cells read from disk at a time
  // Keep freed large CPU buffers for the next batch (host_memory.h); off only to measure the
  // difference (bench/bench_model_host_cache).
  bool reuseHostBuffers = true;
  // Multi-GPU: the rows are split into `shards` contiguous ranges embedded by separate worker
  // processes (shardIndex = 0..shards-1, each on its own device), each into its own resume
  // file; a final call with shardIndex = -1 merges them into the output.
  int shards = 1;
  int shardIndex = -1;
  // A species the assets lack (new_species.h): its protein embeddings and gene positions. The
  // bundle extended by it is saved to extendedAssetsDir ("" = "<assets folder name>+<species>"
  // next to the output) and reused by later runs; assetsDir itself is never modified.
  std::string newSpeciesEmbeddings;  // .pt: dict gene symbol -> tensor [token_dim]
  std::string newSpeciesPositions;   // CSV: gene_symbol, chromosome, start
  int64_t newSpeciesSeed = -1;       // chromosome rows; the release asks for the taxonomy id
  std::string extendedAssetsDir;
};

struct EmbedProgress {
  int64_t cellsDone = 0;   // input rows handled (embedded or dropped)
  int64_t cellsTotal = 0;
  double cellsPerSecond = 0;
  double etaSeconds = 0;
  std::string stage;       // "counting genes", "embedding", "writing"
};

// Cells the embedder gives one forward pass, for a batch of `batch` cells of `length` tokens:
// the batch on a GPU; on the CPU as many as keep the attention scores (cells x heads x length^2
// floats) within 160 MiB, at least one (larger batches ran 2.3x slower per cell on 2 cores).
size_t cellsPerForward(bool cpu, size_t batch, int64_t heads, int64_t length);

struct EmbedReport {
  int64_t cells = 0, cellsEmbedded = 0, cellsDroppedFilter = 0, cellsNoMatchedGenes = 0;
  int64_t genes = 0, genesMatched = 0, genesKept = 0;
  std::string countsKey, countsReason, device, modelSummary;
  int64_t resumedFrom = 0;
  int64_t batches = 0;              // forward passes (each of one sentence length, no padding)
  std::string assetsDir;            // the bundle used (the extended one for a new species)
  bool assetsExtended = false, extensionReused = false;
  int64_t newSpeciesOffset = 0, newSpeciesChromTokens = 0;
  uint64_t newSpeciesSeed = 0;
  double seconds = 0;       // whole run: open, filters, model load, embedding, writing
  double embedSeconds = 0;  // the embedding pass alone (tokenize + network)
  double countSeconds = 0;  // pass 1: genes expressed per cell, over the whole file
  double loadSeconds = 0;   // model and token table read, placed on the device, prepared
  double writeSeconds = 0;  // the output file, from the end of the pass
  std::vector<std::string> warnings;
};

// Returns false from the callback to cancel: embed() then throws uce::Error(Cancelled) and
// leaves the resume file, so the next run continues where this one stopped.
using ProgressFn = std::function<bool(const EmbedProgress&)>;

EmbedReport embedDataset(const EmbedOptions& options, const ProgressFn& progress = {});

}  // namespace uce::model
