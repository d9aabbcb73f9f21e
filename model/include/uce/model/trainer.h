#pragma once
// UCE pre-training (UCE_SPEC section 5), one process: masked-expression prediction over a corpus
// of .h5ad files. A cell's training sample depends only on (seed, epoch, file, row), the epoch
// order only on (seed, epoch), so a run is reproducible and resumes bitwise on the CPU.
//
// Pieces, each usable alone:
//   TrainingSampleBuilder  one cell's counts -> sentence + loss genes + labels
//   CorpusStream           the corpus as a shuffled, endless stream of cells (bounded memory)
//   Trainer                model, optimizer, schedule; step() = one optimizer step on given
//                          micro-batches, run() = the loop with metrics and checkpoints.
// Data-parallel training plugs in at two seams: CorpusStream's (rank, worldSize) shard and
// Trainer::setGradientHook (all-reduce of the gradients before clipping).
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <ATen/Tensor.h>

#include "uce/model/tokenizer.h"

namespace uce::model {

class Distributed;  // distributed.h

// ---- training sample --------------------------------------------------------------------

struct SampleOptions {
  double maskRatio = 0.2;  // share of the cell's expressed matched genes hidden from the sentence
  int nLoss = 64;          // genes scored per cell: nLoss/2 positives, the rest negatives
  // Negatives: "uniform" over the cell's unexpressed genes (UCE_SPEC 5, the default), or
  // "frequency": unexpressed genes drawn in proportion to how often the gene is detected in its
  // dataset. Positives follow detection frequency by nature, so with "frequency" a gene's
  // identity alone no longer predicts its label and the cell embedding must carry the cell's
  // state; on small corpora uniform negatives let a model score well from gene priors alone
  // while its cell embeddings collapse.
  std::string negatives = "uniform";
  // Depth: when > 0, a cell with more UMIs than this (its stored counts summed) is thinned to
  // about this many before masking (each UMI kept with probability target / total, a binomial
  // draw per gene from the cell's own stream; values are rounded to whole counts first). All
  // cells then look equally deep to the objective, so the model gains nothing by encoding the
  // sequencing depth (which differs between donors and batches) and spends its capacity on the
  // cell's state instead. Cells shallower than the target are left as they are. 0 = off.
  double downsampleTo = 0;
  // Gene-scale augmentation: when > 0, each expressed gene's count in a training cell is
  // multiplied by exp(geneScaleSd * z), z standard normal, drawn per (cell, gene) from a
  // stream of the cell's own (after thinning, before masking). Batches and technologies differ
  // mostly by gene-specific capture efficiency, a log-normal factor per gene; a model that sees
  // random such factors gains nothing by encoding them. 0 = off.
  double geneScaleSd = 0;
  // Second view of a cell (TrainOptions::viewConsistency): the same cell drawn again from a
  // stream of its own (its own mask, sentence and thinning), then thinned further: each UMI kept
  // with probability min(1, f * exp(viewGeneSd * z)), f log-uniform in [viewDepthMin, 1] per
  // cell and z standard normal per (cell, gene). It looks like the cell from a shallower donor
  // with other per-gene capture efficiencies, the two ways batches differ.
  double viewDepthMin = 0.33;
  double viewGeneSd = 0.25;
};

struct TrainingSample {
  std::vector<int32_t> tokens;      // [padLength] sentence (CLS, chromosome groups, padding)
  int length = 0;                   // real tokens in `tokens`
  std::vector<int32_t> lossTokens;  // [nLoss] gene tokens scored by the binary decoder
  std::vector<float> labels;        // [nLoss] 1 = expressed (masked or top-up), 0 = unexpressed
  std::vector<int32_t> lossColumns; // [nLoss] input columns of lossTokens
  std::vector<int32_t> maskedColumns;  // columns hidden from the sentence
  float logDepth = 0;               // ln(the cell's UMIs, after any thinning, / 1000)
};

// Builds training samples for one gene table; reusable per thread (holds buffers).
class TrainingSampleBuilder {
 public:
  // detection: per input column, the share of the dataset's cells expressing it (needed for
  // negatives == "frequency"; may be null otherwise). Must outlive the builder.
  TrainingSampleBuilder(const GeneTable& genes, const SentenceOptions& sentence, const SampleOptions& sample,
                        const std::vector<float>* detection = nullptr);
  // cols/vals: one cell's stored entries. stream: the cell's RNG stream (e.g. sampleStream()).
  // Returns false when the cell has fewer than 2 expressed matched genes (nothing to mask).
  // secondView: build the cell's second view instead (SampleOptions::viewDepthMin).
  bool build(const int32_t* cols, const float* vals, int64_t n, uint64_t stream, TrainingSample& out,
             bool secondView = false);

 private:
  const GeneTable& genes_;
  const std::vector<float>* detection_ = nullptr;
  float maxDetection_ = 0;
  SentenceOptions sentenceOpt_;
  SampleOptions opt_;
  SentenceBuilder sentence_;
  std::vector<uint8_t> expressed_;  // [columns] marker for the current cell, zero between cells
  std::vector<int32_t> eCols_, keepCols_, thinCols_;
  std::vector<float> thinVals_;
  std::vector<int32_t> viewCols_;
  std::vector<float> viewVals_;
  std::vector<float> eVals_, keepVals_;
  std::vector<int32_t> pool_;
};

// RNG stream of one cell in one epoch: distinct for every (epoch, file, row).
uint64_t sampleStream(uint64_t epoch, uint64_t file, uint64_t row);

// ---- corpus -----------------------------------------------------------------------------

struct CorpusEntry {
  std::string path;     // absolute or relative to the corpus file
  std::string species;
  std::string layer;    // counts matrix key ("" = guess as the embedder does)
};

// Reads a corpus CSV: header with `path,species` and optionally `layer` (any order).
// Throws uce::Error(Format) naming the file and line at fault.
std::vector<CorpusEntry> readCorpus(const std::string& csvPath);

// ---- trainer ----------------------------------------------------------------------------

struct TrainOptions {
  // Data
  std::string corpus;            // corpus CSV (readCorpus)
  std::string assetsDir;         // asset bundle with all_tokens.torch
  std::string outDir;            // metrics.jsonl, model.torch, checkpoints/
  std::string initModel;         // "" = random init; else a state dict to continue training
  int minCellsPerGene = 10;      // genes seen in fewer cells of their file are ignored
  int minGenesPerCell = 25;      // cells with fewer expressed matched genes are skipped
  double valFraction = 0.05;     // cells held out, chosen by hash(seed, file, row)
  int valCells = 256;            // validation cells scored (evenly spaced over the held-out ones)
  int blockRows = 512;           // rows read from disk at a time; the epoch shuffles these blocks
  int shuffleBlocks = 4;         // blocks whose cells are shuffled together (memory bound)
  // Model (ignored when initModel or --resume give the weights)
  int64_t nLayers = 4;
  int64_t dModel = 512;
  int64_t nHead = 8;
  int64_t dHid = 0;              // 0 = 4 * dModel
  int64_t outputDim = 0;         // 0 = dModel
  // Hidden widths of the binary decoder (UceConfig::headHidden). The release's 2048/512/128
  // score each (cell, loss gene) pair with ~1.4 M weights: on a d_model-64 model on 2 CPU cores
  // that head took half of every step (n_loss 32). A narrower head leaves the cell embedding as
  // it is (the embedder never runs the head); the release's PyTorch code builds the head at its
  // fixed widths, so only models trained at the default load there with their head.
  std::array<int64_t, 3> headHidden{2048, 512, 128};
  // A new model's binary decoder starts with its weights on the cell embedding multiplied by
  // this. The cell embedding enters it L2-normalised (norm 1) beside a LayerNorm'd gene vector
  // (norm ~sqrt(d_model)), so at gain 1 the cell is a small input that short runs learn to
  // ignore; sqrt(d_model) balances the two. Ignored when initModel / resume give the weights.
  double cellGain = 1.0;
  // A new model's first attention layer starts with its query and key projections multiplied
  // by this. The spec scales the token vectors by sqrt(d_model) before layer 0 (later layers see
  // LayerNorm outputs), so with PyTorch's default initialisation layer 0's attention logits have
  // a standard deviation of about d_model / 2 (27 measured at d_model 64): every query attends
  // to a single token and little gradient reaches the others. 1 / sqrt(d_model) gives layer 0
  // the logit scale of the later layers. 1 = PyTorch's default. Ignored like cellGain.
  double firstLayerQkGain = 1.0;
  // Learning rate of the cell-embedding path (encoder, transformer layers, decoder) relative to
  // lr; the training head (gene_embedding_layer, binary_decoder) always uses lr. Early in
  // training the head cannot yet use the cell embedding, so the differences between cells only
  // add noise to its logits, and at the full rate the encoder removes them: the embeddings of
  // all cells collapse to one point within ~100 steps and never recover (measured on a
  // two-type world with disjoint genes: mean cosine 0.95 -> 0.9999, masked-gene AUROC 0.50 after
  // 1,000 steps). At 0.1 the head learns to read the cell first (AUROC 0.76, type ASW 0.94 at
  // step 600). 1 = one rate for all (the same optimizer state layout as before this option).
  double encoderLrScale = 1.0;
  // Sample
  int sampleSize = 1024;         // genes per sentence (with replacement), UCE_SPEC 3
  int padLength = 0;             // 0 = sampleSize + 512 (room for chromosome tokens)
  double maskRatio = 0.2;
  int nLoss = 64;                // the paper used more on its large models; 64 suits small ones
  std::string negatives = "uniform";  // uniform | frequency (SampleOptions::negatives)
  double downsampleTo = 0;       // thin deeper cells to this many UMIs (SampleOptions::downsampleTo); 0 = off
  double geneScaleSd = 0;        // log-normal per-gene count factors (SampleOptions::geneScaleSd); 0 = off
  // View consistency: when > 0, every training cell is also drawn as a second view, shallower
  // and with other per-gene capture factors (SampleOptions::viewDepthMin, viewGeneSd), both
  // views go through the model (batchSize cells = 2 x batchSize sentences), and the loss adds
  // viewConsistency x the symmetric InfoNCE loss (temperature 0.2) of finding each cell's
  // second view among the micro-batch's second views by cosine, and back. The masked-gene
  // objective alone rewards an embedding that encodes depth and capture efficiency (they decide
  // how many and which genes a cell expresses), which are what differ between donors and
  // batches; this term asks the embedding to keep what the two views share. A plain pull of the
  // views together (1 - cosine, or that over the distance between cells) is lowered most by
  // collapsing every cell to one point, and did exactly that on the demo world (masked-gene
  // AUROC 0.91 flat); InfoNCE is highest at collapse (log n). With data parallelism each rank's
  // cells are matched within that rank's micro-batch, so a 2-rank run equals a 1-rank run of
  // the same global batch only without this term. 0 = off (UCE_SPEC section 5 alone).
  double viewConsistency = 0;
  // View isotropy (with views on): adds viewIsotropy x the anisotropy of the micro-batch's view
  // displacements D (each row a cell's second-view embedding minus its first), tr((D'D)^2) /
  // tr(D'D)^2 = sum of squared eigenvalues of D'D over their squared sum: 1 when every cell
  // moves along one direction (a depth axis that any linear read-out finds), 1/min(n, dim) when
  // the displacements spread over all directions alike. It is scale-free, so it rewards neither
  // collapse nor spread, only no preferred direction: thinning and capture changes then move a
  // cell as the sampling noise of the sentence does. 0 = off.
  double viewIsotropy = 0;
  double viewDepthMin = 0.33;    // SampleOptions::viewDepthMin
  double viewGeneSd = 0.25;      // SampleOptions::viewGeneSd
  // Optimisation
  int batchSize = 16;            // cells per micro-batch (per rank: global batch = ranks x batchSize)
  int gradAccum = 1;             // micro-batches per optimizer step
  double lr = 1e-4;              // peak learning rate (AdamW)
  double beta1 = 0.9, beta2 = 0.999;
  double weightDecay = 0.01;
  int warmupSteps = -1;          // linear warm-up; -1 = 5 % of maxSteps
  double minLrRatio = 0.1;       // cosine decay ends at lr * minLrRatio at maxSteps
  double clipNorm = 1.0;         // total gradient-norm clip; <= 0 disables
  // How the AdamW step runs: "loop" (LibTorch's optimizer, a few kernels a parameter tensor),
  // "fused" (one multi-tensor kernel for all of them, and the clip's norms as one multi-tensor
  // kernel; CUDA with LibTorch >= 2.1 only) or "auto" (fused where it can run, else the loop).
  // The same update up to float rounding; the optimizer state and checkpoints are the same.
  std::string adamw = "auto";
  // Whether the next micro-batch's cells are read and tokenized on a thread of their own while
  // the device runs the current one: "on", "off" or "auto" (on with --device cuda, where the host
  // otherwise prepares each step's first micro-batch while the GPU waits; off on the CPU, whose
  // cores run the step). The same cells, samples and weights either way.
  std::string prefetch = "auto";
  int64_t maxSteps = 10000;
  // Control
  int64_t checkpointEvery = 500; // steps; a checkpoint is also written at the end / on a signal
  int keepCheckpoints = 3;
  // The periodic checkpoints go to disk on a background thread while training goes on: the step
  // that writes one only copies the weights and the optimizer state into host memory (from the
  // device on CUDA); serialising model.torch (with the token table) and optimizer.pt, streamed
  // to the files, the other files, their fsyncs, the rename into place and the pruning of old
  // checkpoints follow in the background. One write at a time: the next checkpoint, the end of
  // the run and a stop wait for it, and its error (disk full, say) stops the run at the next
  // step. The last checkpoint (the end, a signal) is written before run() returns either way.
  // The files are the synchronous ones byte for byte, optimizer.pt up to LibTorch's names for
  // the parameters' states. false: every checkpoint on the training thread (uce train
  // --sync-checkpoints).
  bool backgroundCheckpoints = true;
  int64_t validateEvery = 100;   // steps between validation loss / AUROC
  uint64_t seed = 0;
  std::string device = "cpu";    // cpu | cuda (bf16 autocast on CUDA)
  int localRank = 0;             // CUDA: this process trains on GPU localRank % device count
  bool activationCheckpointing = false;  // recompute layer activations in backward (memory)
  // The transformer layers run wholly in bf16 in training: each forward pass casts their
  // weights to bf16 (the parameters, the optimizer's update and the checkpoints stay fp32) and
  // the activations between their operations (residual adds, LayerNorm, dropout) stay bf16.
  // Without it, CUDA autocast runs only the matmuls and attention in bf16 and every LayerNorm
  // and residual add in fp32, with a cast on either side (an H200 profile of the release's
  // layer shape: 1.10x faster layers without those casts). Changes the numerics: the residual stream
  // is rounded to bf16 after every add. The embedding and decoder stay as they were (autocast
  // on CUDA, fp32 on the CPU); validation and `uce embed` are unaffected.
  bool bf16Layers = false;
  // Every training sentence filled to 1 + sampleSize + 2 x (most chromosomes of a corpus
  // species) tokens with extra gene draws (SentenceOptions::fixedLength), so micro-batches
  // need no padding and no attention mask (the fused attention kernels run). The sentences
  // gain a few genes (one per missing chromosome's two tokens); the embedder is unaffected.
  bool equalLengths = false;
  // The binary decoder also sees the cell's depth: each scored gene's logit gains
  // (w . gene_embedding_layer(p_g) + b) x ln(UMIs / 1000), w and b learned from zero. The
  // masked-gene objective then need not carry sequencing depth in the cell embedding. The
  // depth head is trainer state (checkpoints' depth-head.pt), not part of the release layout:
  // OUT/model.torch and `uce embed` are unchanged.
  bool depthAwareDecoder = false;
  int threads = 0;               // tokenizer + CPU math threads; 0 = hardware concurrency
  bool resume = false;           // continue from the newest checkpoint in outDir/checkpoints
  const std::atomic<bool>* stop = nullptr;  // set (e.g. by SIGINT): checkpoint, then return
  bool dropout = true;           // false: train without dropout (deterministic comparisons)
  // Data parallel (distributed.h): the stream's training cells are dealt to the ranks in runs
  // of batchSize (so the ranks' micro-batches together are one rank's micro-batch of worldSize x
  // batchSize), each rank reads from disk only its own cells' rows (the passes over whole files
  // are split between the ranks), gradients are averaged over the ranks, and only rank 0 writes
  // metrics, checkpoints (with every rank's stream position) and the model. Null = one process.
  Distributed* dist = nullptr;
  // With data parallelism: average the gradients in buckets of this size while the backward
  // pass is still running (Distributed::attachOverlapped, as PyTorch's DDP does), or, false,
  // all at once after it (Distributed::averageGradients). Both give the same values.
  bool overlapGradSync = true;
  int64_t gradBucketBytes = 25 << 20;
};

struct StepMetrics {
  int64_t step = 0;              // optimizer steps done (1 after the first)
  int64_t epoch = 0;
  double loss = 0, lr = 0, gradNorm = 0;
  double cellsPerSecond = 0, tokensPerSecond = 0;
  // Rows read from the corpus for the training stream during the step, all ranks together
  // (whole shuffle groups with one rank; with several, each rank reads only its cells' rows).
  int64_t rowsRead = 0;
  double viewCosine = -2;        // mean cosine of the two views' embeddings (-2 = no views)
  double viewNce = 0;            // the view-consistency InfoNCE loss (TrainOptions::viewConsistency)
  double viewAnisotropy = 0;     // anisotropy of the view displacements (TrainOptions::viewIsotropy)
  // Data parallel, overlapped: gradient buckets whose all-reduce started during the backward
  // pass, of all buckets (-1 = not overlapped). The first number near the second means the
  // communication ran beside the backward pass.
  int syncBucketsInBackward = -1, syncBuckets = 0;
  bool validated = false;
  double valLoss = 0, valAuroc = 0;
  std::string json() const;      // one metrics.jsonl line (no newline)
};

struct TrainReport {
  int64_t steps = 0;             // optimizer steps done in total (including before a resume)
  int64_t resumedFrom = 0;       // step of the checkpoint resumed from; 0 = fresh start
  bool interrupted = false;      // stopped by the stop flag
  double seconds = 0;
  std::string modelFile;         // outDir/model.torch (empty when interrupted)
  std::string lastCheckpoint;
  StepMetrics last;
  std::string modelSummary;
  int64_t prefetched = 0;        // micro-batches the training took ready-made (TrainOptions::prefetch)
};

struct Validation {
  double loss = 0, auroc = 0;
  int64_t cells = 0, genes = 0;
};

// Area under the ROC curve of scores for binary labels (ties count half).
double auroc(const std::vector<float>& scores, const std::vector<float>& labels);

class Trainer {
 public:
  // Opens the corpus and assets, builds (or loads) the model; with options.resume, restores the
  // newest checkpoint. Throws uce::Error on bad input.
  explicit Trainer(const TrainOptions& options);
  ~Trainer();
  // Runs until maxSteps or the stop flag; returns what happened. progress is called after
  // every step (return false to stop as the stop flag does).
  TrainReport run(const std::function<bool(const StepMetrics&)>& progress = {});
  // Loss and masked-gene AUROC on the held-out cells (the model's current weights).
  Validation validate();
  // Called with the trainable parameters after backward, before clipping (all-reduce here).
  void setGradientHook(std::function<void(std::vector<at::Tensor>&)> hook);
  int64_t step() const;
  // The next n training cells of this rank's shuffled stream (validation and filtered cells
  // left out), as training would take them: each cell's epoch, corpus file (its line in the
  // corpus, from 0) and row. Advances the stream without training; for inspecting the shuffle.
  struct StreamCell {
    int64_t epoch = 0;
    int file = 0;
    int64_t row = 0;
  };
  std::vector<StreamCell> streamCells(int64_t n);
  std::string writeCheckpoint();  // returns its directory
  std::string summary() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> d_;
};

// Convenience: Trainer(options).run(progress).
TrainReport train(const TrainOptions& options, const std::function<bool(const StepMetrics&)>& progress = {});

}  // namespace uce::model
