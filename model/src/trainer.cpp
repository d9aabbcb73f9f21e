// UCE pre-training loop (UCE_SPEC section 5): corpus stream, model, AdamW with warm-up + cosine
// schedule, metrics, validation and atomic checkpoints.
#include "uce/model/trainer.h"

#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>
#include <future>
#include <thread>
#include <unistd.h>

#include "uce/core/text.h"
#include "uce/core/atomic_file.h"
#include "uce/core/dataset.h"
#include "autocast.h"
#include "uce/core/error.h"
#include "uce/core/inspect.h"
#include "uce/core/remove_tree.h"
#include "uce/model/assets.h"
#include "uce/model/distributed.h"
#include "uce/model/network.h"
#include "uce/model/torch_file.h"

namespace uce::model {
namespace fs = std::filesystem;
namespace {

constexpr double kViewTemperature = 0.2;          // InfoNCE temperature of the view-consistency term
constexpr uint64_t kValEpoch = ~uint64_t(0);         // RNG stream "epoch" of validation samples
constexpr uint64_t kOrderSalt = 0xBB67AE8584CAA73Bull;  // epoch block order
constexpr uint64_t kGroupSalt = 0x3C6EF372FE94F82Bull;  // cell order inside a shuffle group
constexpr uint64_t kValSalt = 0xA54FF53A5F1D36F1ull;    // validation split

uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  std::string t = s.substr(a, b - a + 1);
  if (t.size() >= 2 && t.front() == '"' && t.back() == '"') t = t.substr(1, t.size() - 2);
  return t;
}

// Corpus CSV fields: RFC 4180, surrounding spaces trimmed ("a.h5ad, human").
std::vector<std::string> splitCsv(const std::string& line) {
  std::vector<std::string> out = csvSplit(line);
  for (auto& f : out) f = trim(f);
  return out;
}

std::string jsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  char b[40];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}

// One corpus file, ready to sample from.
struct CorpusFile {
  CorpusEntry entry;
  std::unique_ptr<Dataset> ds;
  std::string countsKey;
  int64_t cells = 0;
  GeneTable table;
  SentenceOptions sentence;
  std::vector<float> detection;  // per column: share of the file's cells expressing the gene
};

// One cell handed to the tokenizer: its counts and its RNG stream.
struct CellCounts {
  int file = 0;
  int64_t row = 0;
  uint64_t stream = 0;
  std::vector<int32_t> cols;
  std::vector<float> vals;
};

// Where the stream stands: the epoch, the shuffle group in it and the cell in the group.
struct StreamPosition {
  int64_t epoch = 0, group = 0, index = 0;
  // Training cells (usable, not validation) of the whole stream before this position, over all
  // epochs: with data-parallel ranks, which rank a cell belongs to (Trainer::Impl::mine).
  int64_t taken = 0;
};

// An integer of a checkpoint's state.txt; a damaged file is reported, not crashed on.
int64_t stateInt(const std::map<std::string, std::string>& state, const std::string& key, const fs::path& dir) {
  auto it = state.find(key);
  char* end = nullptr;
  const long long v = it == state.end() ? 0 : std::strtoll(it->second.c_str(), &end, 10);
  if (it == state.end() || it->second.empty() || *end != '\0' || v < 0)
    fail(ErrorKind::Format, (dir / "state.txt").string(),
         "damaged checkpoint: no valid '" + key + "'; delete this checkpoint folder to resume from an older one");
  return v;
}

}  // namespace

// ---- corpus ----------------------------------------------------------------------------

std::vector<CorpusEntry> readCorpus(const std::string& csvPath) {
  std::ifstream in(csvPath);
  if (!in) fail(ErrorKind::Io, csvPath, "cannot open the corpus file");
  std::string line;
  if (!std::getline(in, line))
    fail(ErrorKind::Format, csvPath, "the corpus file is empty; expected a header `path,species[,layer]`");
  const auto header = splitCsv(line);
  int iPath = -1, iSpecies = -1, iLayer = -1;
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == "path") iPath = static_cast<int>(i);
    if (header[i] == "species") iSpecies = static_cast<int>(i);
    if (header[i] == "layer") iLayer = static_cast<int>(i);
  }
  if (iPath < 0 || iSpecies < 0)
    fail(ErrorKind::Format, csvPath, "the header must name the columns `path` and `species` (and optionally "
                                     "`layer`); found: " + line);
  const fs::path base = fs::absolute(csvPath).parent_path();
  std::vector<CorpusEntry> out;
  int lineNo = 1;
  while (std::getline(in, line)) {
    ++lineNo;
    if (trim(line).empty()) continue;
    const auto f = splitCsv(line);
    const auto need = static_cast<size_t>(std::max(iPath, iSpecies));
    if (f.size() <= need || f[static_cast<size_t>(iPath)].empty() || f[static_cast<size_t>(iSpecies)].empty())
      fail(ErrorKind::Format, csvPath, "line " + std::to_string(lineNo) + ": needs a path and a species");
    CorpusEntry e;
    fs::path p = f[static_cast<size_t>(iPath)];
    e.path = (p.is_absolute() ? p : base / p).lexically_normal().string();
    e.species = f[static_cast<size_t>(iSpecies)];
    if (iLayer >= 0 && static_cast<size_t>(iLayer) < f.size()) e.layer = f[static_cast<size_t>(iLayer)];
    out.push_back(e);
  }
  if (out.empty()) fail(ErrorKind::Format, csvPath, "the corpus lists no datasets");
  return out;
}

double auroc(const std::vector<float>& scores, const std::vector<float>& labels) {
  std::vector<size_t> idx(scores.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  double rankSumPos = 0, nPos = 0;
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    while (j < idx.size() && scores[idx[j]] == scores[idx[i]]) ++j;
    const double meanRank = 0.5 * static_cast<double>(i + j + 1);  // 1-based ranks i+1..j
    for (size_t k = i; k < j; ++k)
      if (labels[idx[k]] > 0.5f) {
        rankSumPos += meanRank;
        nPos += 1;
      }
    i = j;
  }
  const double nNeg = static_cast<double>(scores.size()) - nPos;
  if (nPos == 0 || nNeg == 0) return 0.5;
  return (rankSumPos - nPos * (nPos + 1) / 2) / (nPos * nNeg);
}

std::string StepMetrics::json() const {
  std::string s = "{\"step\":" + std::to_string(step) + ",\"epoch\":" + std::to_string(epoch) +
                  ",\"loss\":" + jsonNumber(loss) + ",\"lr\":" + jsonNumber(lr) + ",\"grad_norm\":" +
                  jsonNumber(gradNorm) + ",\"cells_per_s\":" + jsonNumber(cellsPerSecond) +
                  ",\"tokens_per_s\":" + jsonNumber(tokensPerSecond) + ",\"rows_read\":" + std::to_string(rowsRead);
  if (viewCosine > -2)
    s += ",\"view_cosine\":" + jsonNumber(viewCosine) + ",\"view_nce\":" + jsonNumber(viewNce) +
         ",\"view_anisotropy\":" + jsonNumber(viewAnisotropy);
  if (syncBucketsInBackward >= 0)
    s += ",\"sync_buckets_in_backward\":" + std::to_string(syncBucketsInBackward) +
         ",\"sync_buckets\":" + std::to_string(syncBuckets);
  if (validated) s += ",\"val_loss\":" + jsonNumber(valLoss) + ",\"val_auroc\":" + jsonNumber(valAuroc);
  return s + "}";
}

// ---- trainer ---------------------------------------------------------------------------

// TrainOptions::adamw "fused" needs _fused_adamw_ (LibTorch 2.0) and _foreach_mul_ by a tensor (2.1).
#define UCE_FUSED_ADAMW (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1))

// The key of a parameter in an optimizer's state map: its TensorImpl's address, as a pointer
// (LibTorch 2) or as the text LibTorch 1.x printed it to.
template <typename Key>
Key adamStateKey(const torch::Tensor& p) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream os;
    os << p.unsafeGetTensorImpl();
    return os.str();
  } else {
    return p.unsafeGetTensorImpl();
  }
}

// torch::save into a sink (a file being written, or memory), without a stream's extra copy.
template <typename Value>
void torchSaveTo(const Value& value, const uce::ByteSink& write) {
  const std::function<size_t(const void*, size_t)> sink = [&write](const void* data, size_t n) {
    write(data, n);
    return n;
  };
  torch::save(value, sink);
}

// A copy of an AdamW optimizer with its state on the host, apart from the training: what a
// background checkpoint serialises (optimizer.pt) while the next steps change the original.
// LibTorch saves each parameter's state under a name and restores it by the parameter's
// position in its group, so the copy's parameters are empty stand-ins; the file loads into
// the training's optimizer as the original's would.
std::unique_ptr<torch::optim::AdamW> hostCopy(torch::optim::AdamW& optimizer) {
  auto& state = optimizer.state();
  using Key = typename std::decay_t<decltype(state)>::key_type;
  auto host = [](const torch::Tensor& t) {
    if (!t.defined()) return t;
    return t.is_cpu() ? t.detach().clone() : t.detach().to(torch::kCPU);
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  std::vector<std::pair<torch::Tensor, std::unique_ptr<torch::optim::AdamWParamState>>> states;
  for (auto& g : optimizer.param_groups()) {
    std::vector<torch::Tensor> standIns;
    for (auto& p : g.params()) {
      standIns.push_back(torch::empty({0}));
      auto it = state.find(adamStateKey<Key>(p));
      if (it == state.end()) continue;  // no step has touched it yet
      const auto& st = static_cast<const torch::optim::AdamWParamState&>(*it->second);
      auto copy = std::make_unique<torch::optim::AdamWParamState>();
      copy->step(st.step());
      copy->exp_avg(host(st.exp_avg()));
      copy->exp_avg_sq(host(st.exp_avg_sq()));
      if (st.max_exp_avg_sq().defined()) copy->max_exp_avg_sq(host(st.max_exp_avg_sq()));
      states.emplace_back(standIns.back(), std::move(copy));
    }
    groups.emplace_back(std::move(standIns), g.options().clone());
  }
  auto out = std::make_unique<torch::optim::AdamW>(
      std::move(groups), static_cast<const torch::optim::AdamWOptions&>(optimizer.defaults()));
  for (auto& [standIn, st] : states) out->state()[adamStateKey<Key>(standIn)] = std::move(st);
  return out;
}

struct Trainer::Impl {
  TrainOptions opt;
  std::vector<CorpusFile> files;
  torch::Device device{torch::kCPU};
  UceNetwork net{nullptr};
  torch::nn::Linear depthHead{nullptr};  // TrainOptions::depthAwareDecoder (checkpoints: depth-head.pt)
  std::vector<torch::Tensor> params;
  std::unique_ptr<torch::optim::AdamW> optimizer;
  bool fusedAdamw = false;  // TrainOptions::adamw resolved: fusedClipAndStep instead of the loop
  std::function<void(std::vector<at::Tensor>&)> gradHook;
  int64_t stepsDone = 0;
  int threads = 1;
  int rank = 0, world = 1;  // data-parallel rank and world size (opt.dist)
  bool writer() const { return rank == 0; }
  // Data stream.
  struct Block { int file; int64_t row0, n; };
  std::vector<Block> blocks;
  StreamPosition pos;       // the stream's read position (ahead of `consumed` while a micro-batch is prefetched)
  StreamPosition consumed;  // after the last micro-batch the training took: what checkpoints save
  std::vector<Block> epochBlocks;  // blocks of pos.epoch in shuffled order
  int64_t epochLoaded = -1, groupLoaded = -1;
  std::vector<std::pair<int, int64_t>> groupCells;  // (file, row) in shuffled order
  std::map<std::pair<int, int64_t>, CsrBlock> groupData;  // (file, row0) -> rows row0.. (disjoint runs)
  // With data-parallel ranks: per file and row, whether the cell passes the filters (usable()),
  // worked out once at the start, each rank for its share of the rows (shareUsability).
  std::vector<std::vector<uint8_t>> usableRows;
  int64_t rowsRead = 0;      // corpus rows read for the training stream (by whichever thread prepares)
  int64_t rowsReadStep = 0;  // of those, the rows of the micro-batches taken since the last step's metrics
  std::vector<TrainingSample> valSamples;
  std::vector<std::vector<std::unique_ptr<TrainingSampleBuilder>>> builders;  // [thread][file]
  SampleOptions sampleOpt;

  bool isValidation(int file, int64_t row) const {
    if (opt.valFraction <= 0) return false;
    const uint64_t h = mix64(mix64(opt.seed ^ kValSalt) ^ mix64(static_cast<uint64_t>(file)) ^ static_cast<uint64_t>(row));
    return static_cast<double>(h >> 11) * 0x1.0p-53 < opt.valFraction;
  }

#if UCE_FUSED_ADAMW
  // TrainOptions::adamw "fused": the gradient-norm clip and AdamW's update as multi-tensor
  // kernels (a handful of launches in all, against a few a parameter tensor), on the tensors of
  // LibTorch's own AdamW state, so checkpoints (optimizer.pt) are the same either way. The
  // gradient norm is read back after the update is queued, so the device never waits on the host.
  // Returns the total gradient norm before clipping, as clip_grad_norm_ does.
  double fusedClipAndStep(const std::vector<double>& groupLr) {
    torch::NoGradGuard noGrad;
    std::vector<torch::Tensor> grads;
    for (auto& p : params)
      if (p.grad().defined()) grads.push_back(p.grad());
    if (grads.empty()) return 0.0;
    auto total = at::stack(at::_foreach_norm(grads, 2)).norm(2);
    if (opt.clipNorm > 0) at::_foreach_mul_(grads, (opt.clipNorm / (total + 1e-6)).clamp_max(1.0));
    auto& state = optimizer->state();
    using Key = typename std::decay_t<decltype(state)>::key_type;
    auto& groups = optimizer->param_groups();
    std::map<int64_t, torch::Tensor> stepCounts;
    for (size_t g = 0; g < groups.size(); ++g) {
      const auto& o = static_cast<const torch::optim::AdamWOptions&>(groups[g].options());
      std::vector<torch::Tensor> ps, gs, m, v, steps;
      for (auto& p : groups[g].params()) {
        if (!p.grad().defined()) continue;
        const Key key = adamStateKey<Key>(p);
        auto it = state.find(key);
        if (it == state.end()) {  // as LibTorch's AdamW starts a parameter's state
          auto st = std::make_unique<torch::optim::AdamWParamState>();
          st->step(0);
          st->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
          st->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
          it = state.emplace(key, std::move(st)).first;
        }
        auto& st = static_cast<torch::optim::AdamWParamState&>(*it->second);
        st.step(st.step() + 1);
        ps.push_back(p);
        gs.push_back(p.grad());
        m.push_back(st.exp_avg());
        v.push_back(st.exp_avg_sq());
        // The kernel reads each tensor's step count (bias corrections) from the device: one
        // tensor for each count (all parameters share one, unless one had no gradient once).
        auto& count = stepCounts[st.step()];
        if (!count.defined()) count = torch::full({}, static_cast<double>(st.step()), p.options().dtype(torch::kFloat));
        steps.push_back(count);
      }
      if (ps.empty()) continue;
      at::_fused_adamw_(ps, gs, m, v, {}, steps, groupLr[g], std::get<0>(o.betas()), std::get<1>(o.betas()),
                        o.weight_decay(), o.eps(), /*amsgrad=*/false, /*maximize=*/false);
    }
    return total.item<double>();
  }
#endif

  double lrAt(int64_t step) const {  // step: 0-based index of the optimizer step
    const int64_t warm = opt.warmupSteps >= 0 ? opt.warmupSteps : std::max<int64_t>(1, opt.maxSteps / 20);
    if (step < warm) return opt.lr * static_cast<double>(step + 1) / static_cast<double>(warm);
    const double span = static_cast<double>(std::max<int64_t>(1, opt.maxSteps - warm));
    const double t = std::min(1.0, static_cast<double>(step - warm) / span);
    const double cosine = 0.5 * (1 + std::cos(M_PI * t));
    return opt.lr * (opt.minLrRatio + (1 - opt.minLrRatio) * cosine);
  }

  void openFiles(AssetBundle& assets) {
    const auto entries = readCorpus(opt.corpus);
    for (size_t fi = 0; fi < entries.size(); ++fi) {
      CorpusFile f;
      f.entry = entries[fi];
      if (!fs::exists(f.entry.path))
        fail(ErrorKind::Io, opt.corpus, "dataset " + f.entry.path + " (line " + std::to_string(fi + 2) + ") not found");
      f.ds = openDataset(f.entry.path);
      f.cells = f.ds->cells();
      f.countsKey = chooseCountsMatrix(*f.ds, f.entry.layer).key;
      const MatrixInfo mi = f.ds->matrix(f.countsKey);
      const std::vector<std::string>& names = f.ds->varFor(f.countsKey).index;
      if (ensemblFraction(names) > 0.5)
        fail(ErrorKind::InvalidArgument, f.entry.path,
             "genes in var_names look like Ensembl ids; UCE matches gene symbols: map them to symbols first");
      const SpeciesTokens& sp = assets.species(f.entry.species);
      f.table.token.assign(static_cast<size_t>(mi.cols), -1);
      f.table.chrom.assign(static_cast<size_t>(mi.cols), 0);
      f.table.start.assign(static_cast<size_t>(mi.cols), 0);
      for (int64_t c = 0; c < mi.cols && c < static_cast<int64_t>(names.size()); ++c) {
        const std::string g = upper(names[static_cast<size_t>(c)]);
        auto it = sp.index.find(g);
        auto cp = sp.chromPos.find(g);
        if (it == sp.index.end() || cp == sp.chromPos.end()) continue;
        f.table.token[static_cast<size_t>(c)] = static_cast<int32_t>(sp.offset + it->second);
        f.table.chrom[static_cast<size_t>(c)] = cp->second.first;
        f.table.start[static_cast<size_t>(c)] = cp->second.second;
      }
      if (opt.minCellsPerGene > 0 || opt.negatives == "frequency") {
        std::vector<int64_t> seen(static_cast<size_t>(mi.cols), 0);
        passOverOwnChunks(f, [&](const CsrBlock& b, int64_t, int64_t) {
          for (size_t k = 0; k < b.indices.size(); ++k)
            if (b.values[k] > 0) ++seen[static_cast<size_t>(b.indices[k])];
        });
        if (world > 1) {  // each rank counted its share of the rows
          const std::vector<double> all = opt.dist->sum(std::vector<double>(seen.begin(), seen.end()));
          for (size_t c = 0; c < seen.size(); ++c) seen[c] = std::llround(all[c]);
        }
        for (size_t c = 0; c < seen.size(); ++c)  // genes seen in too few cells of this file are ignored
          if (seen[c] < opt.minCellsPerGene) f.table.token[c] = -1;
        f.detection.resize(seen.size());
        for (size_t c = 0; c < seen.size(); ++c)
          f.detection[c] = static_cast<float>(static_cast<double>(seen[c]) / static_cast<double>(std::max<int64_t>(1, mi.rows)));
      }
      f.table.finalize();
      if (f.table.matched() < 2)
        fail(ErrorKind::InvalidArgument, f.entry.path,
             "fewer than 2 genes match " + f.entry.species + " protein embeddings: check the species column of " +
                 opt.corpus);
      f.sentence.sampleSize = opt.sampleSize;
      f.sentence.padLength = opt.padLength;
      f.sentence.chromTokenOffset = sp.chromTokenOffset;
      f.sentence.seed = opt.seed;
      files.push_back(std::move(f));
    }
    if (opt.equalLengths) {  // TrainOptions::equalLengths: one length for every file's sentences
      size_t most = 0;
      for (const CorpusFile& f : files) {
        std::vector<int32_t> chroms(f.table.chromByRank.begin(), f.table.chromByRank.end());
        std::sort(chroms.begin(), chroms.end());
        most = std::max(most, static_cast<size_t>(std::unique(chroms.begin(), chroms.end()) - chroms.begin()));
      }
      const int length = 1 + opt.sampleSize + 2 * static_cast<int>(most);
      if (length > opt.padLength)
        fail(ErrorKind::InvalidArgument, opt.corpus,
             "--equal-lengths needs sentences of " + std::to_string(length) + " tokens but the pad length is " +
                 std::to_string(opt.padLength));
      for (CorpusFile& f : files) f.sentence.fixedLength = length;
    }
    for (size_t fi = 0; fi < files.size(); ++fi)
      for (int64_t r = 0; r < files[fi].cells; r += opt.blockRows)
        blocks.push_back({static_cast<int>(fi), r, std::min<int64_t>(opt.blockRows, files[fi].cells - r)});
    if (blocks.empty()) fail(ErrorKind::InvalidArgument, opt.corpus, "the corpus datasets hold no cells");
  }

  // Rows [row0, row0+n) of a file: the cell is usable for training when it passes the filter.
  bool usable(const CorpusFile& f, const CsrBlock& b, int64_t local) const {
    int64_t expressed = 0;
    for (int64_t k = b.indptr[static_cast<size_t>(local)]; k < b.indptr[static_cast<size_t>(local + 1)]; ++k)
      expressed += b.values[static_cast<size_t>(k)] > 0 && f.table.rank[static_cast<size_t>(b.indices[static_cast<size_t>(k)])] >= 0;
    return expressed >= std::max(2, opt.minGenesPerCell);
  }

  // Rows [r0, r0 + n) of every file, in chunks of kPassRows, the chunks dealt to the ranks in
  // turn: each rank reads its own share of the corpus in the passes over whole files.
  static constexpr int64_t kPassRows = 4096;
  template <class F>
  void passOverOwnChunks(const CorpusFile& f, F&& onChunk) const {
    CsrBlock b;
    RowStream chunks(*f.ds, f.countsKey, kPassRows, rank, world);
    while (chunks.next(b)) onChunk(b, b.row0, b.rows());
  }

  // Data parallel: each rank applies the cell filter to its share of the rows, and the ranks
  // exchange the flags, so that every rank knows the whole stream's training cells without
  // reading them and reads from disk only the rows of the cells it trains on (loadGroup).
  void shareUsability() {
    int64_t training = 0;
    usableRows.assign(files.size(), {});
    for (size_t fi = 0; fi < files.size(); ++fi) {
      const CorpusFile& f = files[fi];
      std::vector<uint8_t>& flags = usableRows[fi];
      flags.assign(static_cast<size_t>(f.cells), 0);
      passOverOwnChunks(f, [&](const CsrBlock& b, int64_t r0, int64_t n) {
        for (int64_t l = 0; l < n; ++l) flags[static_cast<size_t>(r0 + l)] = usable(f, b, l) ? 1 : 0;
      });
      opt.dist->maxBytes(flags);
      for (int64_t r = 0; r < f.cells; ++r)
        training += flags[static_cast<size_t>(r)] && !isValidation(static_cast<int>(fi), r);
    }
    if (training == 0) failNoTrainingCell();
  }

  [[noreturn]] void failNoTrainingCell() const {
    fail(ErrorKind::InvalidArgument, opt.corpus, "no cell of the corpus passes the filters (>= " +
                                                     std::to_string(opt.minGenesPerCell) + " expressed matched genes) "
                                                     "outside the validation split");
  }

  // Data parallel: the stream's training cells in runs of batchSize, dealt to the ranks in turn
  // (run k to rank k mod world). The ranks' micro-batches together are then, step by step, what
  // one rank with a world-times larger batch takes, in the same order; a rank that refills a
  // micro-batch (a cell whose sample could not be built) takes the next cells of its own runs.
  bool mine(int64_t taken) const { return (taken / opt.batchSize) % world == rank; }

  bool trainingCell(int file, int64_t row) const {
    return usableRows[static_cast<size_t>(file)][static_cast<size_t>(row)] && !isValidation(file, row);
  }

  // The data of a cell of the loaded group (nullptr: not read).
  const CsrBlock* rowData(int file, int64_t row, int64_t& local) const {
    auto it = groupData.upper_bound({file, row});
    if (it == groupData.begin()) return nullptr;
    --it;
    if (it->first.first != file || row >= it->first.second + static_cast<int64_t>(it->second.indptr.size()) - 1)
      return nullptr;
    local = row - it->first.second;
    return &it->second;
  }

  void loadGroup(int64_t epoch, int64_t group) {
    if (epochLoaded != epoch) {
      epochBlocks = blocks;
      CellRng rng(opt.seed ^ kOrderSalt, static_cast<uint64_t>(epoch));
      for (size_t i = epochBlocks.size(); i > 1; --i) std::swap(epochBlocks[i - 1], epochBlocks[rng.below(i)]);
      epochLoaded = epoch;
    }
    groupData.clear();
    groupCells.clear();
    const size_t b0 = static_cast<size_t>(group * opt.shuffleBlocks);
    const size_t b1 = std::min(epochBlocks.size(), b0 + static_cast<size_t>(opt.shuffleBlocks));
    for (size_t b = b0; b < b1; ++b) {
      const Block& blk = epochBlocks[b];
      if (world == 1) {
        const CorpusFile& f = files[static_cast<size_t>(blk.file)];
        groupData[{blk.file, blk.row0}] = f.ds->readRows(f.countsKey, blk.row0, blk.n);
        rowsRead += blk.n;
      }
      for (int64_t r = blk.row0; r < blk.row0 + blk.n; ++r) groupCells.emplace_back(blk.file, r);
    }
    CellRng rng(opt.seed ^ kGroupSalt, static_cast<uint64_t>(epoch) * 0x100000000ull + static_cast<uint64_t>(group));
    for (size_t i = groupCells.size(); i > 1; --i) std::swap(groupCells[i - 1], groupCells[rng.below(i)]);
    groupLoaded = group;
    if (world > 1) {
      // This rank's cells from the position on: their rows are read, consecutive rows at once.
      std::vector<std::pair<int, int64_t>> wanted;
      int64_t taken = pos.taken;
      for (size_t i = static_cast<size_t>(std::max<int64_t>(0, pos.index)); i < groupCells.size(); ++i) {
        const auto [file, row] = groupCells[i];
        if (trainingCell(file, row) && mine(taken++)) wanted.emplace_back(file, row);
      }
      std::sort(wanted.begin(), wanted.end());
      for (size_t i = 0; i < wanted.size();) {
        size_t j = i + 1;
        while (j < wanted.size() && wanted[j].first == wanted[i].first &&
               wanted[j].second == wanted[j - 1].second + 1)
          ++j;
        const CorpusFile& f = files[static_cast<size_t>(wanted[i].first)];
        const auto n = static_cast<int64_t>(j - i);
        groupData[wanted[i]] = f.ds->readRows(f.countsKey, wanted[i].second, n);
        rowsRead += n;
        i = j;
      }
    }
  }

  int64_t groupsPerEpoch() const {
    return (static_cast<int64_t>(blocks.size()) + opt.shuffleBlocks - 1) / opt.shuffleBlocks;
  }

  // Next training cell of the endless shuffled stream (validation and filtered cells skipped);
  // with data-parallel ranks, the next of this rank's cells (mine()).
  void nextCell(CellCounts& out) {
    int64_t scanned = 0;
    while (true) {
      if (epochLoaded != pos.epoch || groupLoaded != pos.group) loadGroup(pos.epoch, pos.group);
      if (pos.index >= static_cast<int64_t>(groupCells.size())) {
        pos.index = 0;
        if (++pos.group >= groupsPerEpoch()) {
          pos.group = 0;
          ++pos.epoch;
        }
        continue;
      }
      const auto [file, row] = groupCells[static_cast<size_t>(pos.index++)];
      int64_t local = 0;
      const CsrBlock* data = nullptr;
      if (world > 1) {  // every rank has a training cell eventually (shareUsability checked one exists)
        if (!trainingCell(file, row) || !mine(pos.taken++)) continue;
        data = rowData(file, row, local);
        if (!data) fail(ErrorKind::Io, opt.corpus, "internal: the row of a cell of this rank was not read");
      } else {
        if (++scanned > 2 * static_cast<int64_t>(blocks.size()) * opt.blockRows + 2) failNoTrainingCell();
        if (isValidation(file, row)) continue;
        data = rowData(file, row, local);
        if (!usable(files[static_cast<size_t>(file)], *data, local)) continue;
        ++pos.taken;
      }
      const CsrBlock& b = *data;
      out.file = file;
      out.row = row;
      out.stream = sampleStream(static_cast<uint64_t>(pos.epoch), static_cast<uint64_t>(file), static_cast<uint64_t>(row));
      const auto a = static_cast<size_t>(b.indptr[static_cast<size_t>(local)]);
      const auto e = static_cast<size_t>(b.indptr[static_cast<size_t>(local + 1)]);
      out.cols.assign(b.indices.begin() + static_cast<std::ptrdiff_t>(a), b.indices.begin() + static_cast<std::ptrdiff_t>(e));
      out.vals.assign(b.values.begin() + static_cast<std::ptrdiff_t>(a), b.values.begin() + static_cast<std::ptrdiff_t>(e));
      return;
    }
  }

  // Tokenizes cells on worker threads; a sample depends only on its cell's stream. With
  // views, each cell is tokenized twice (SampleOptions::viewDepthMin) and a cell is kept only
  // when both views are: the result is [first views..., second views...], pairs at i and n + i.
  std::vector<TrainingSample> tokenize(const std::vector<CellCounts>& cells, bool views = false) {
    std::vector<TrainingSample> out(cells.size() * (views ? 2 : 1));
    std::vector<uint8_t> ok(out.size(), 0);
    const int nt = std::max(1, std::min<int>(threads, static_cast<int>(cells.size())));
    std::vector<std::thread> pool;
    std::vector<std::exception_ptr> errors(static_cast<size_t>(nt));
    for (int t = 0; t < nt; ++t)
      pool.emplace_back([&, t] {
        try {
          auto& mine = builders[static_cast<size_t>(t)];
          for (size_t i = static_cast<size_t>(t); i < cells.size(); i += static_cast<size_t>(nt)) {
            const CellCounts& c = cells[i];
            auto& b = mine[static_cast<size_t>(c.file)];
            const CorpusFile& f = files[static_cast<size_t>(c.file)];
            if (!b) b = std::make_unique<TrainingSampleBuilder>(f.table, f.sentence, sampleOpt, &f.detection);
            ok[i] = b->build(c.cols.data(), c.vals.data(), static_cast<int64_t>(c.cols.size()), c.stream, out[i]);
            if (views)
              ok[cells.size() + i] = b->build(c.cols.data(), c.vals.data(), static_cast<int64_t>(c.cols.size()),
                                              c.stream, out[cells.size() + i], true);
          }
        } catch (...) {
          errors[static_cast<size_t>(t)] = std::current_exception();
        }
      });
    for (auto& th : pool) th.join();
    for (auto& e : errors)
      if (e) std::rethrow_exception(e);
    std::vector<TrainingSample> kept;
    if (!views) {
      for (size_t i = 0; i < out.size(); ++i)
        if (ok[i]) kept.push_back(std::move(out[i]));
      return kept;
    }
    const size_t n = cells.size();
    for (size_t i = 0; i < n; ++i)
      if (ok[i] && ok[n + i]) kept.push_back(std::move(out[i]));
    for (size_t i = 0; i < n; ++i)
      if (ok[i] && ok[n + i]) kept.push_back(std::move(out[n + i]));
    return kept;
  }

  // A micro-batch's samples, read and tokenized ([first views..., second views...] with views),
  // with the stream position after it, the corpus rows its reading took and its reading time.
  struct Prepared {
    std::vector<TrainingSample> samples;
    size_t cells = 0;
    StreamPosition after;
    int64_t rows = 0;
    double readMs = 0;  // of its host time, the reading (the rest is tokenizing)
  };
  Prepared prepareMicroBatch(bool views) {
    using Clock = std::chrono::steady_clock;
    Prepared p;
    const int64_t rows0 = rowsRead;
    std::vector<CellCounts> cells;
    std::vector<TrainingSample> second;
    while (p.samples.size() < static_cast<size_t>(opt.batchSize)) {
      const size_t need = static_cast<size_t>(opt.batchSize) - p.samples.size();
      cells.resize(need);
      const auto t0 = Clock::now();
      // With data-parallel ranks, nextCell yields this rank's cells only (mine()).
      for (size_t g = 0; g < need; ++g) nextCell(cells[g]);
      p.readMs += std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      auto got = tokenize(cells, views);
      const size_t n = views ? got.size() / 2 : got.size();
      for (size_t i = 0; i < n; ++i) p.samples.push_back(std::move(got[i]));
      if (views)
        for (size_t i = n; i < got.size(); ++i) second.push_back(std::move(got[i]));
    }
    p.cells = p.samples.size();
    for (auto& x : second) p.samples.push_back(std::move(x));
    p.after = pos;
    p.rows = rowsRead - rows0;
    return p;
  }
  // TrainOptions::prefetch: the next micro-batch, prepared on its own thread.
  bool prefetchOn = false;
  std::future<Prepared> prefetched;
  int64_t prefetchesTaken = 0;
  void startPrefetch(bool views) {
    prefetched = std::async(std::launch::async, [this, views] { return prepareMicroBatch(views); });
  }
  // Waits for a prefetch still running (a stop, the end of a run). Its micro-batch (or error)
  // stays for the next step, should the training go on; checkpoints save `consumed`, the
  // position before it, so a resume prepares it again.
  void waitForPrefetch() {
    if (prefetched.valid()) prefetched.wait();
  }
  // The next micro-batch: the prefetched one, or one prepared here.
  Prepared takeMicroBatch(bool views) {
    if (prefetched.valid()) ++prefetchesTaken;
    Prepared p = prefetched.valid() ? prefetched.get() : prepareMicroBatch(views);
    consumed = p.after;
    rowsReadStep += p.rows;
    return p;
  }

  struct Batch {
    torch::Tensor tokens, mask, genes, labels;  // [B, L] long, [B, L] bool, [B, G] long, [B, G] float
    torch::Tensor depth;                        // [B] float: TrainingSample::logDepth
    int64_t realTokens = 0;
  };
  Batch makeBatch(const std::vector<TrainingSample>& s, size_t b0, size_t b1) {
    Batch b;
    const auto B = static_cast<int64_t>(b1 - b0);
    int64_t L = 0;
    for (size_t i = b0; i < b1; ++i) L = std::max<int64_t>(L, s[i].length);
    const auto G = static_cast<int64_t>(s[b0].lossTokens.size());
    b.tokens = torch::zeros({B, L}, torch::kLong);
    b.mask = torch::zeros({B, L}, torch::kBool);
    b.genes = torch::empty({B, G}, torch::kLong);
    b.labels = torch::empty({B, G}, torch::kFloat);
    b.depth = torch::empty({B}, torch::kFloat);
    auto* tp = b.tokens.data_ptr<int64_t>();
    auto* mp = b.mask.data_ptr<bool>();
    auto* gp = b.genes.data_ptr<int64_t>();
    auto* lp = b.labels.data_ptr<float>();
    for (int64_t r = 0; r < B; ++r) {
      const TrainingSample& x = s[b0 + static_cast<size_t>(r)];
      for (int64_t q = 0; q < x.length; ++q) {
        tp[r * L + q] = x.tokens[static_cast<size_t>(q)];
        mp[r * L + q] = true;
      }
      for (int64_t g = 0; g < G; ++g) {
        gp[r * G + g] = x.lossTokens[static_cast<size_t>(g)];
        lp[r * G + g] = x.labels[static_cast<size_t>(g)];
      }
      b.depth[r] = x.logDepth;
      b.realTokens += x.length;
    }
    b.tokens = b.tokens.to(device);
    b.mask = b.mask.to(device);
    b.genes = b.genes.to(device);
    b.labels = b.labels.to(device);
    b.depth = b.depth.to(device);
    return b;
  }

  torch::Tensor logits(const Batch& b, torch::Tensor* embOut = nullptr) {
    const bool autocast = device.is_cuda();
    if (autocast) setCudaAutocast(true);
    auto emb = net->embed(b.tokens, b.mask);
    torch::Tensor g;
    auto out = net->geneLogits(emb, b.genes, depthHead ? &g : nullptr).to(torch::kFloat);
    if (depthHead)  // TrainOptions::depthAwareDecoder: a per-gene slope on the cell's log depth
      out = out + depthHead->forward(g).to(torch::kFloat).squeeze(-1) * b.depth.unsqueeze(1);
    if (autocast) setCudaAutocast(false);
    if (embOut) *embOut = emb.to(torch::kFloat);
    return out;
  }

  // UCE_TRAIN_TRACE=1: wait for the device after each phase of a step and print where the step's
  // time went, to find what holds a GPU's training back: the batches' reading, tokenizing and
  // upload; the forward pass as the token inputs (embedding lookup and encoder), the transformer
  // layers (UceNetworkImpl::setPhaseHook) and the rest (decoder, training head, loss); the
  // backward pass; the update. The waits remove the host/device overlap.
  const bool trace = [] {
    const char* v = std::getenv("UCE_TRAIN_TRACE");
    return v && *v && std::string(v) != "0";
  }();
  enum TracePhase { kRead, kTokenize, kUpload, kInputs, kLayers, kHead, kBackward, kUpdate, kPhases };
  std::array<double, kPhases> traceSum{};
  std::chrono::steady_clock::time_point traceMark;
  // Adds the time since the last mark (after waiting for the device) to a phase.
  void traceTo(int phase) {
    if (device.is_cuda()) torch::cuda::synchronize();
    const auto now = std::chrono::steady_clock::now();
    traceSum[static_cast<size_t>(phase)] += std::chrono::duration<double, std::milli>(now - traceMark).count();
    traceMark = now;
  }

  StepMetrics trainStep() {
    const auto t0 = std::chrono::steady_clock::now();
    if (trace) {
      traceSum.fill(0);
      traceMark = t0;
      net->setPhaseHook([this](int phase) { traceTo(phase == 0 ? kInputs : kLayers); });
    }
    // The micro-batches' loss and view metrics are summed on the device and read once a step
    // (one host sync, not one per value and micro-batch): [loss, cosine, InfoNCE, anisotropy].
    torch::Tensor sums;
    int64_t cellsSeen = 0, tokensSeen = 0;
    const bool views = opt.viewConsistency > 0;
    const bool overlap = opt.dist && world > 1 && opt.overlapGradSync;
    net->train(opt.dropout);
    for (int a = 0; a < opt.gradAccum; ++a) {
      if (trace) traceTo(kBackward);  // the previous micro-batch's backward pass
      const bool wasPrefetched = prefetched.valid();
      Prepared prep = takeMicroBatch(views);
      if (trace) {  // host work only: a prefetched micro-batch counts what the training waited for it
        const auto now = std::chrono::steady_clock::now();
        const double ms = std::chrono::duration<double, std::milli>(now - traceMark).count();
        traceSum[kRead] += wasPrefetched ? ms : prep.readMs;
        traceSum[kTokenize] += wasPrefetched ? 0.0 : ms - prep.readMs;
        traceMark = now;
      }
      const std::vector<TrainingSample>& samples = prep.samples;
      const size_t cellsHere = prep.cells;
      Batch b = makeBatch(samples, 0, samples.size());
      if (trace) traceTo(kUpload);
      torch::Tensor emb;
      auto loss = torch::binary_cross_entropy_with_logits(logits(b, views ? &emb : nullptr), b.labels);
      std::vector<torch::Tensor> parts{loss.detach()};
      if (views) {
        // Both views' embeddings are L2-normalised: dot products are cosines. The term is the
        // symmetric InfoNCE loss of matching each cell's second view among the micro-batch's
        // second views (and back): a cell's views must be closer to each other than to other
        // cells', so moving all cells together raises it (log n at collapse).
        const auto n = static_cast<int64_t>(cellsHere);
        if (n >= 2) {
          auto sim = emb.narrow(0, 0, n).matmul(emb.narrow(0, n, n).t());
          auto target = torch::arange(n, torch::TensorOptions().dtype(torch::kLong).device(sim.device()));
          auto nce = 0.5 * (torch::nn::functional::cross_entropy(sim / kViewTemperature, target) +
                            torch::nn::functional::cross_entropy(sim.t() / kViewTemperature, target));
          loss = loss + opt.viewConsistency * nce;
          // Anisotropy of the displacements: tr((D'D)^2) / tr(D'D)^2, through the n x n Gram
          // matrix D D' (the same nonzero eigenvalues).
          auto d = emb.narrow(0, n, n) - emb.narrow(0, 0, n);
          auto gram = d.matmul(d.t());
          auto aniso = gram.pow(2).sum() / (gram.trace().pow(2) + 1e-20);
          if (opt.viewIsotropy > 0) loss = loss + opt.viewIsotropy * aniso;
          parts.insert(parts.end(), {sim.diagonal().mean().detach(), nce.detach(), aniso.detach()});
        } else {
          parts.resize(4, torch::zeros({}, loss.options()));
        }
      }
      sums = sums.defined() ? sums + torch::stack(parts) : torch::stack(parts);
      if (trace) traceTo(kHead);  // decoder, training head and loss terms
      // The last micro-batch's backward pass averages the gradients as it goes (overlap).
      if (overlap && a == opt.gradAccum - 1) opt.dist->armOverlapped();
      (loss / opt.gradAccum).backward();
      // The device runs the backward pass (and the update) from its queue: the next micro-batch,
      // this step's or the next step's first, is read and tokenized meanwhile.
      if (prefetchOn && (a + 1 < opt.gradAccum || stepsDone + 1 < opt.maxSteps)) startPrefetch(views);
      cellsSeen += static_cast<int64_t>(cellsHere);
      tokensSeen += b.realTokens;
    }
    if (trace) traceTo(kBackward);
    const auto host = sums.to(torch::kCPU, torch::kDouble);
    const double* h = host.data_ptr<double>();
    double lossSum = h[0], cosSum = views ? h[1] : 0, nceSum = views ? h[2] : 0, anisoSum = views ? h[3] : 0;
    int bucketsInBackward = -1;
    if (opt.dist && world > 1) {
      if (overlap) bucketsInBackward = opt.dist->finishOverlapped(params);
      else opt.dist->averageGradients(params, opt.gradBucketBytes);
      const auto s = opt.dist->sum({lossSum, static_cast<double>(cellsSeen), static_cast<double>(tokensSeen), cosSum,
                                    nceSum, static_cast<double>(rowsReadStep), anisoSum});
      lossSum = s[0] / world;  // each rank's loss is a mean over its slice: the global mean
      cellsSeen = static_cast<int64_t>(s[1]);
      tokensSeen = static_cast<int64_t>(s[2]);
      cosSum = s[3] / world;
      nceSum = s[4] / world;
      rowsReadStep = static_cast<int64_t>(s[5]);
      anisoSum = s[6] / world;
    }
    if (gradHook) gradHook(params);
    const double lr = lrAt(stepsDone);
    auto& groups = optimizer->param_groups();
    std::vector<double> groupLr;
    for (size_t g = 0; g < groups.size(); ++g) {  // two groups: [cell-embedding path, head]
      groupLr.push_back(groups.size() > 1 && g == 0 ? lr * opt.encoderLrScale : lr);
      static_cast<torch::optim::AdamWOptions&>(groups[g].options()).lr(groupLr.back());
    }
    double norm = 0;
#if UCE_FUSED_ADAMW
    if (fusedAdamw) norm = fusedClipAndStep(groupLr);
#endif
    if (!fusedAdamw) {
      norm = torch::nn::utils::clip_grad_norm_(params, opt.clipNorm > 0 ? opt.clipNorm : std::numeric_limits<double>::infinity());
      optimizer->step();
    }
    optimizer->zero_grad();
    ++stepsDone;
    if (trace) {
      traceTo(kUpdate);
      const auto& t = traceSum;
      std::fprintf(stderr,
                   "trace: step %lld: read %.1f ms, tokenize %.1f ms, upload %.1f ms, inputs %.1f ms, layers %.1f ms, "
                   "head %.1f ms, backward %.1f ms, update %.1f ms, step %.1f ms\n",
                   static_cast<long long>(stepsDone), t[kRead], t[kTokenize], t[kUpload], t[kInputs], t[kLayers],
                   t[kHead], t[kBackward], t[kUpdate], std::chrono::duration<double, std::milli>(traceMark - t0).count());
      net->setPhaseHook(nullptr);
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    StepMetrics m;
    m.step = stepsDone;
    m.epoch = consumed.epoch;
    m.loss = lossSum / opt.gradAccum;
    m.lr = lr;
    m.gradNorm = norm;
    m.cellsPerSecond = static_cast<double>(cellsSeen) / secs;
    m.tokensPerSecond = static_cast<double>(tokensSeen) / secs;
    m.rowsRead = rowsReadStep;
    rowsReadStep = 0;
    if (overlap) {
      m.syncBucketsInBackward = bucketsInBackward;
      m.syncBuckets = opt.dist->overlappedBuckets();
    }
    if (views) {
      m.viewCosine = cosSum / opt.gradAccum;
      m.viewNce = nceSum / opt.gradAccum;
      m.viewAnisotropy = anisoSum / opt.gradAccum;
    }
    return m;
  }

  void buildValidation() {
    std::vector<std::pair<int, int64_t>> ids;
    for (size_t fi = 0; fi < files.size(); ++fi)
      for (int64_t r = 0; r < files[fi].cells; ++r)
        if (isValidation(static_cast<int>(fi), r)) ids.emplace_back(static_cast<int>(fi), r);
    std::vector<std::pair<int, int64_t>> chosen;
    const size_t want = static_cast<size_t>(std::max(0, opt.valCells));
    if (ids.size() <= want) {
      chosen = ids;
    } else {
      for (size_t k = 0; k < want; ++k) chosen.push_back(ids[k * ids.size() / want]);
    }
    std::vector<CellCounts> cells;
    for (const auto& [file, row] : chosen) {
      const CorpusFile& f = files[static_cast<size_t>(file)];
      CsrBlock b = f.ds->readRows(f.countsKey, row, 1);
      if (!usable(f, b, 0)) continue;
      CellCounts c;
      c.file = file;
      c.row = row;
      c.stream = sampleStream(kValEpoch, static_cast<uint64_t>(file), static_cast<uint64_t>(row));
      c.cols = b.indices;
      c.vals = b.values;
      cells.push_back(std::move(c));
    }
    // Validation scores the objective of UCE_SPEC 5 as written (uniform negatives) whatever
    // negatives training uses, so its AUROC compares across runs.
    const std::string negatives = sampleOpt.negatives;
    auto dropBuilders = [&] {
      for (auto& perThread : builders)
        for (auto& b : perThread) b.reset();
    };
    sampleOpt.negatives = "uniform";
    dropBuilders();
    valSamples = tokenize(cells);
    sampleOpt.negatives = negatives;
    dropBuilders();
  }

  Validation validate() {
    Validation v;
    if (valSamples.empty()) return v;
    torch::NoGradGuard noGrad;
    net->eval();
    std::vector<float> scores, labels;
    double lossSum = 0;
    for (size_t b0 = 0; b0 < valSamples.size(); b0 += static_cast<size_t>(opt.batchSize)) {
      const size_t b1 = std::min(valSamples.size(), b0 + static_cast<size_t>(opt.batchSize));
      Batch b = makeBatch(valSamples, b0, b1);
      auto lg = logits(b);
      lossSum += torch::binary_cross_entropy_with_logits(lg, b.labels, {}, {}, at::Reduction::Sum).item<double>();
      auto lc = lg.cpu().contiguous(), yc = b.labels.cpu().contiguous();
      scores.insert(scores.end(), lc.data_ptr<float>(), lc.data_ptr<float>() + lc.numel());
      labels.insert(labels.end(), yc.data_ptr<float>(), yc.data_ptr<float>() + yc.numel());
    }
    net->train(opt.dropout);
    v.cells = static_cast<int64_t>(valSamples.size());
    v.genes = static_cast<int64_t>(scores.size());
    v.loss = lossSum / static_cast<double>(scores.size());
    v.auroc = auroc(scores, labels);
    return v;
  }

  // The options that must match for a resume to continue the same run.
  std::string runSignature() const {
    std::ostringstream o;
    o << "seed " << opt.seed << "\nbatch_size " << opt.batchSize << "\ngrad_accum " << opt.gradAccum
      << "\nsample_size " << opt.sampleSize << "\npad_length " << opt.padLength << "\nn_loss " << opt.nLoss
      << "\nmask_ratio " << opt.maskRatio << "\nblock_rows " << opt.blockRows << "\nshuffle_blocks "
      << opt.shuffleBlocks << "\nval_fraction " << opt.valFraction << "\nfiles " << files.size() << "\n";
    if (opt.negatives != "uniform") o << "negatives " << opt.negatives << "\n";
    if (opt.downsampleTo > 0) o << "downsample_to " << opt.downsampleTo << "\n";
    if (opt.geneScaleSd > 0) o << "gene_scale_sd " << opt.geneScaleSd << "\n";
    if (opt.viewConsistency > 0)
      o << "view_consistency " << opt.viewConsistency << "\nview_depth_min " << opt.viewDepthMin
        << "\nview_gene_sd " << opt.viewGeneSd << "\n";
    if (opt.viewIsotropy > 0) o << "view_isotropy " << opt.viewIsotropy << "\n";
    if (opt.encoderLrScale != 1.0) o << "encoder_lr_scale " << opt.encoderLrScale << "\n";
    if (opt.equalLengths) o << "equal_lengths " << files.front().sentence.fixedLength << "\n";
    if (opt.depthAwareDecoder) o << "depth_aware_decoder 1\n";
    if (world > 1) o << "world_size " << world << "\n";
    return o.str();
  }

  // The state dict on the host (OUT/model.torch). The frozen token table is copied from the
  // device once and kept (tokenTableCpu), since every checkpoint writes it too.
  NamedTensors cpuStateDict() {
    NamedTensors sd;
    for (auto& kv : net->stateDict()) {
      if (kv.first == "pe_embedding.weight") {
        if (!tokenTableCpu.defined()) tokenTableCpu = kv.second.detach().cpu();
        sd.emplace_back(kv.first, tokenTableCpu);
      } else {
        sd.emplace_back(kv.first, kv.second.detach().cpu());
      }
    }
    return sd;
  }

  std::string checkpointRoot() const { return (fs::path(opt.outDir) / "checkpoints").string(); }

  // The finished checkpoints under `root` (step-N folders with their state.txt), oldest first.
  static std::vector<fs::path> checkpointsIn(const fs::path& root) {
    std::vector<fs::path> out;
    if (!fs::is_directory(root)) return out;
    for (const auto& e : fs::directory_iterator(root)) {
      const std::string n = e.path().filename().string();
      if (e.is_directory() && n.rfind("step-", 0) == 0 && fs::exists(e.path() / "state.txt")) out.push_back(e.path());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  std::vector<fs::path> checkpoints() const { return checkpointsIn(checkpointRoot()); }

  // A run killed while writing a checkpoint leaves its temporary folder (.tmp-step-N-PID): as
  // large as a checkpoint, and never a checkpoint itself. Removes those of processes that are gone.
  void removeStaleTemporaries() const {
    std::error_code ec;
    if (!fs::is_directory(checkpointRoot(), ec)) return;
    for (const auto& e : fs::directory_iterator(checkpointRoot(), ec)) {
      const std::string n = e.path().filename().string();
      const auto dash = n.rfind('-');
      if (n.rfind(".tmp-step-", 0) != 0 || dash == std::string::npos) continue;
      const long pid = std::strtol(n.c_str() + dash + 1, nullptr, 10);
      if (pid <= 0 || pid == static_cast<long>(::getpid())) continue;
      if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) uce::removeTree(e.path().string());
    }
  }

  // A checkpoint in memory: its folder, the weights (copies the training does not touch) and
  // the other files (name, bytes), state.txt last.
  struct CheckpointFiles {
    fs::path root, dst;
    NamedTensors model;
    // optimizer.pt: streamed from `optimizer`, the training's own (written on the training
    // thread) or `hostOptimizer`, a host copy of it (written in the background).
    const torch::optim::Optimizer* optimizer = nullptr;
    std::shared_ptr<torch::optim::AdamW> hostOptimizer;
    std::vector<std::pair<std::string, std::string>> files;
    size_t keep = 1;
  };
  at::Tensor tokenTableCpu;  // the frozen token table on the host, for every checkpoint's model.torch
  // TrainOptions::backgroundCheckpoints: the write in flight, and how it ended.
  std::thread checkpointThread;
  std::atomic<bool> checkpointDone{false};
  std::exception_ptr checkpointError;

  ~Impl() {
    waitForPrefetch();
    if (checkpointThread.joinable()) checkpointThread.join();  // a run that threw: finish quietly
  }

  // Waits for the background write (if any) and rethrows its error. With `onlyIfDone`, returns
  // at once while it is still writing.
  void finishCheckpointWrite(bool onlyIfDone = false) {
    if (!checkpointThread.joinable() || (onlyIfDone && !checkpointDone.load())) return;
    checkpointThread.join();
    if (checkpointError) {
      auto e = checkpointError;
      checkpointError = nullptr;
      std::rethrow_exception(e);
    }
  }

  // Writes the files into a temporary folder (each fsync'ed), renames it into place, then
  // removes all but the newest `keep` checkpoints. On error no new step-N folder appears.
  static void writeCheckpointFiles(const CheckpointFiles& c) {
    const fs::path tmp = c.root / (std::string(".tmp-") + c.dst.filename().string() + "-" + std::to_string(::getpid()));
    auto removeOrFail = [](const fs::path& p) {
      std::string why;
      if (!uce::removeTree(p.string(), &why)) fail(ErrorKind::Io, p.string(), "cannot remove: " + why);
    };
    try {
      removeOrFail(tmp);
      fs::create_directories(tmp);
      saveTensorDict(c.model, (tmp / "model.torch").string());  // streamed: the table is 3 GB at full scale
      if (c.optimizer)
        writeFileAtomic((tmp / "optimizer.pt").string(),
                        [&c](const uce::ByteSink& write) { torchSaveTo(*c.optimizer, write); });
      for (const auto& f : c.files) writeFileAtomic((tmp / f.first).string(), f.second);
      removeOrFail(c.dst);
      fs::rename(tmp, c.dst);
    } catch (const Error&) {
      uce::removeTree(tmp.string());
      throw;
    } catch (const std::exception& e) {
      uce::removeTree(tmp.string());
      fail(ErrorKind::Io, c.dst.string(), std::string("cannot write the checkpoint: ") + e.what());
    }
    // Pruning is housekeeping: a checkpoint that cannot be removed stays, and training goes on.
    std::vector<fs::path> all;
    try {
      all = checkpointsIn(c.root);
    } catch (const std::exception&) {
    }
    for (size_t i = 0; i + c.keep < all.size(); ++i) uce::removeTree(all[i].string());
  }

  // Writes a checkpoint of the current state; returns its folder ("" on ranks other than 0).
  // `background`: the state is copied and serialised here, the files written on a thread
  // (TrainOptions::backgroundCheckpoints); a write still in flight is waited for first.
  std::string writeCheckpoint(bool background = false) {
    using Clock = std::chrono::steady_clock;
    auto msSince = [](Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); };
    const auto tWait = Clock::now();
    finishCheckpointWrite();
    const double waited = msSince(tWait);
    const auto tCopy = Clock::now();
    // Each rank's stream position (a rank that refilled a micro-batch is further on) and its
    // dropout RNG states (the CPU generator's, and on CUDA the device generator's): rank 0
    // gathers them in one collective, every rank filling its own slot of a byte buffer that a
    // byte-wise max all-reduce then completes. Every rank calls this at the same steps.
    const torch::Tensor cpuRng = cpuRngState();
    const torch::Tensor cudaRng = device.is_cuda() ? cudaRngState(device) : torch::Tensor();
    const auto nCpu = static_cast<size_t>(cpuRng.numel());
    const auto nCuda = cudaRng.defined() ? static_cast<size_t>(cudaRng.numel()) : size_t{0};
    const size_t slot = 4 * sizeof(int64_t) + nCpu + nCuda;
    std::vector<uint8_t> gathered(slot * static_cast<size_t>(world), 0);
    {
      uint8_t* mine = gathered.data() + slot * static_cast<size_t>(rank);
      const int64_t p[4] = {consumed.epoch, consumed.group, consumed.index, consumed.taken};
      std::memcpy(mine, p, sizeof p);
      std::memcpy(mine + sizeof p, cpuRng.data_ptr<uint8_t>(), nCpu);
      if (nCuda) std::memcpy(mine + sizeof p + nCpu, cudaRng.data_ptr<uint8_t>(), nCuda);
    }
    if (world > 1) opt.dist->maxBytes(gathered);
    auto position = [&](int r, int k) {
      int64_t v = 0;
      std::memcpy(&v, gathered.data() + slot * static_cast<size_t>(r) + sizeof(int64_t) * static_cast<size_t>(k), sizeof v);
      return v;
    };
    // Rows of [world, bytes] tensors: rng-ranks.pt (CPU, with several ranks), rng-cuda.pt (CUDA).
    auto rows = [&](size_t offset, size_t n) {
      auto t = torch::empty({world, static_cast<int64_t>(n)}, torch::kUInt8);
      for (int r = 0; r < world; ++r)
        std::memcpy(t[r].data_ptr<uint8_t>(), gathered.data() + slot * static_cast<size_t>(r) + offset, n);
      return t;
    };
    if (!writer()) return "";  // rank 0 holds the same weights and writes for all
    char name[32];
    std::snprintf(name, sizeof name, "step-%07lld", static_cast<long long>(stepsDone));
    CheckpointFiles c;
    c.root = checkpointRoot();
    c.dst = c.root / name;
    c.keep = static_cast<size_t>(std::max(1, opt.keepCheckpoints));
    try {
      fs::create_directories(c.root);
      auto serialised = [](const auto& value) {  // torch::save into memory
        std::string bytes;
        torchSaveTo(value, [&bytes](const void* data, size_t n) { bytes.append(static_cast<const char*>(data), n); });
        return bytes;
      };
      // model.torch is a whole release-layout file, as OUT/model.torch: the embedder and the
      // release's code load it. The weights are copied here (the next step changes them); the
      // frozen token table never changes, so one host copy serves every checkpoint. A resume
      // takes the table from the asset folder.
      c.model = cpuStateDict();
      if (device.is_cpu())  // .cpu() gave the training's own tensors, which the next step changes
        for (auto& kv : c.model)
          if (kv.first != "pe_embedding.weight") kv.second = kv.second.clone();
      // The optimizer's state is copied to the host here and serialised with the files (in the
      // background, that takes LibTorch's archive writer and its CRCs off the training thread).
      if (background) {
        c.hostOptimizer = hostCopy(*optimizer);
        c.optimizer = c.hostOptimizer.get();
      } else {
        c.optimizer = optimizer.get();
      }
      if (depthHead) {
        NamedTensors dh;
        for (auto& p : depthHead->named_parameters()) dh.emplace_back(p.key(), p.value().detach().cpu());
        c.files.emplace_back("depth-head.pt", torchSaveTensorDict(dh));
      }
      c.files.emplace_back("rng.pt", serialised(cpuRng));
      if (world > 1) c.files.emplace_back("rng-ranks.pt", serialised(rows(4 * sizeof(int64_t), nCpu)));
      if (nCuda) c.files.emplace_back("rng-cuda.pt", serialised(rows(4 * sizeof(int64_t) + nCpu, nCuda)));
      std::ostringstream st;
      st << "step " << stepsDone << "\nepoch " << consumed.epoch << "\ngroup " << consumed.group << "\nindex " << consumed.index
         << "\nnhead " << net->config().nHead << "\n";
      for (int r = 0; r < world && world > 1; ++r)
        st << "rank" << r << "_epoch " << position(r, 0) << "\nrank" << r << "_group " << position(r, 1) << "\nrank"
           << r << "_index " << position(r, 2) << "\nrank" << r << "_taken " << position(r, 3) << "\n";
      st << runSignature();
      c.files.emplace_back("state.txt", st.str());  // last: a folder without it is not a checkpoint
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      fail(ErrorKind::Io, c.dst.string(), std::string("cannot write the checkpoint: ") + e.what());
    }
    const std::string dst = c.dst.string();
    // UCE_TRAIN_TRACE: what a checkpoint costs the training thread, and how long its write takes.
    const double copied = msSince(tCopy);
    const long long step = static_cast<long long>(stepsDone);
    if (!background) {
      const auto tWrite = Clock::now();
      writeCheckpointFiles(c);
      if (trace)
        std::fprintf(stderr, "trace: checkpoint %lld: copied and serialised %.1f ms, written %.1f ms, on the training thread\n",
                     step, copied, msSince(tWrite));
      return dst;
    }
    if (trace)
      std::fprintf(stderr, "trace: checkpoint %lld: waited %.1f ms for the previous write, copied and serialised %.1f ms "
                   "on the training thread\n", step, waited, copied);
    checkpointDone = false;
    checkpointThread = std::thread([this, c = std::move(c), step] {
      const auto tWrite = Clock::now();
      try {
        writeCheckpointFiles(c);
      } catch (...) {
        checkpointError = std::current_exception();
      }
      if (trace)
        std::fprintf(stderr, "trace: checkpoint %lld: written %.1f ms in the background\n", step,
                     std::chrono::duration<double, std::milli>(Clock::now() - tWrite).count());
      checkpointDone = true;
    });
    return dst;
  }

  static torch::Tensor cpuRngState() {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    return gen.get_state().contiguous();
  }

  static void setCpuRngState(const torch::Tensor& state) {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state);
  }

  // The CUDA generator of `dev` (dropout masks on the GPU).
  static torch::Tensor cudaRngState(const torch::Device& dev) {
    auto gen = at::globalContext().defaultGenerator(dev);
    std::lock_guard<std::mutex> lock(gen.mutex());
    return gen.get_state().contiguous();
  }

  static void setCudaRngState(const torch::Device& dev, const torch::Tensor& state) {
    auto gen = at::globalContext().defaultGenerator(dev);
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state);
  }

  static std::map<std::string, std::string> readState(const fs::path& file) {
    std::ifstream in(file);
    std::map<std::string, std::string> m;
    std::string k, v;
    while (in >> k >> v) m[k] = v;
    return m;
  }
};

Trainer::Trainer(const TrainOptions& options) : d_(std::make_unique<Impl>()) {
  Impl& d = *d_;
  d.opt = options;
  TrainOptions& o = d.opt;
  if (o.dist) {
    d.rank = o.dist->rank();
    d.world = o.dist->worldSize();
  }
  if (o.corpus.empty()) fail(ErrorKind::InvalidArgument, "", "--corpus FILE is required");
  if (o.assetsDir.empty()) fail(ErrorKind::InvalidArgument, "", "--assets DIR is required");
  if (o.outDir.empty()) fail(ErrorKind::InvalidArgument, "", "--out DIR is required");
  if (o.padLength <= 0) o.padLength = o.sampleSize + 512;
  if (o.sampleSize <= 0 || o.padLength < o.sampleSize + 3 || o.batchSize <= 0 || o.gradAccum <= 0 || o.nLoss < 2 ||
      o.maxSteps < 0 || o.blockRows <= 0 || o.shuffleBlocks <= 0 || !(o.maskRatio > 0 && o.maskRatio < 1) ||
      !(o.lr > 0))
    fail(ErrorKind::InvalidArgument, "", "invalid training options: sample size, batch size, grad accumulation and "
                                         "lr must be positive, n_loss >= 2, mask ratio in (0, 1)");
  if (o.dHid <= 0) o.dHid = 4 * o.dModel;
  if (o.outputDim <= 0) o.outputDim = o.dModel;
  d.threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  d.sampleOpt.maskRatio = o.maskRatio;
  d.sampleOpt.nLoss = o.nLoss;
  d.sampleOpt.negatives = o.negatives;
  d.sampleOpt.downsampleTo = o.downsampleTo;
  d.sampleOpt.geneScaleSd = o.geneScaleSd;
  d.sampleOpt.viewDepthMin = o.viewDepthMin;
  d.sampleOpt.viewGeneSd = o.viewGeneSd;
  if (o.gradBucketBytes < 1) fail(ErrorKind::InvalidArgument, "", "--grad-bucket-mb must be a positive size");
  if (!(o.cellGain > 0) || !std::isfinite(o.cellGain))
    fail(ErrorKind::InvalidArgument, "", "--cell-gain must be a positive number");
  if (!(o.firstLayerQkGain > 0) || !std::isfinite(o.firstLayerQkGain))
    fail(ErrorKind::InvalidArgument, "", "--first-qk-gain must be a positive number");
  if (!(o.encoderLrScale > 0) || !std::isfinite(o.encoderLrScale))
    fail(ErrorKind::InvalidArgument, "", "--encoder-lr-scale must be a positive number");
  for (int64_t w : o.headHidden)
    if (w < 1 || w > 65536) fail(ErrorKind::InvalidArgument, "", "--head-hidden widths must be between 1 and 65536");
  if (o.negatives != "uniform" && o.negatives != "frequency")
    fail(ErrorKind::InvalidArgument, "", "--negatives must be uniform or frequency");
  if (!(o.downsampleTo >= 0) || !std::isfinite(o.downsampleTo))
    fail(ErrorKind::InvalidArgument, "", "--downsample-to must be a number of UMIs >= 0 (0 = off)");
  if (!(o.geneScaleSd >= 0) || !std::isfinite(o.geneScaleSd) || o.geneScaleSd > 5)
    fail(ErrorKind::InvalidArgument, "", "--gene-scale-sd must be between 0 and 5 (0 = off)");
  if (!(o.viewConsistency >= 0) || !std::isfinite(o.viewConsistency) || o.viewConsistency > 100)
    fail(ErrorKind::InvalidArgument, "", "--view-consistency must be between 0 and 100 (0 = off)");
  if (!(o.viewIsotropy >= 0) || !std::isfinite(o.viewIsotropy) || o.viewIsotropy > 100)
    fail(ErrorKind::InvalidArgument, "", "--view-isotropy must be between 0 and 100 (0 = off)");
  if (o.viewIsotropy > 0 && !(o.viewConsistency > 0))
    fail(ErrorKind::InvalidArgument, "", "--view-isotropy needs the second views: set --view-consistency too");
  if (!(o.viewDepthMin > 0 && o.viewDepthMin <= 1))
    fail(ErrorKind::InvalidArgument, "", "--view-depth-min must be in (0, 1]");
  if (!(o.viewGeneSd >= 0) || !std::isfinite(o.viewGeneSd) || o.viewGeneSd > 5)
    fail(ErrorKind::InvalidArgument, "", "--view-gene-sd must be between 0 and 5");
  if (o.device == "cuda") {
    if (!torch::cuda::is_available())
      fail(ErrorKind::InvalidArgument, "", "--device cuda asked for, but no CUDA device is available (this build's "
                                           "LibTorch " TORCH_VERSION " may be CPU-only)");
    // One GPU per local rank (LOCAL_RANK of torchrun / SLURM_LOCALID, or --nproc's ranks).
    const int n = static_cast<int>(torch::cuda::device_count());
    d.device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(std::max(0, o.localRank) % std::max(1, n)));
  } else if (o.device != "cpu") {
    fail(ErrorKind::InvalidArgument, "", "--device must be cpu or cuda");
  } else {
    torch::set_num_threads(d.threads);
  }
  if (o.adamw != "auto" && o.adamw != "loop" && o.adamw != "fused")
    fail(ErrorKind::InvalidArgument, "", "--adamw must be auto, loop or fused");
  constexpr bool kFusedBuilt = UCE_FUSED_ADAMW;
  if (o.adamw == "fused" && !(kFusedBuilt && d.device.is_cuda()))
    fail(ErrorKind::InvalidArgument, "", "--adamw fused needs --device cuda and LibTorch >= 2.1 (this is LibTorch " TORCH_VERSION
                                         "); use --adamw loop or auto");
  d.fusedAdamw = o.adamw == "fused" || (o.adamw == "auto" && kFusedBuilt && d.device.is_cuda());
  if (o.prefetch != "auto" && o.prefetch != "on" && o.prefetch != "off")
    fail(ErrorKind::InvalidArgument, "", "--prefetch must be auto, on or off");
  d.prefetchOn = o.prefetch == "on" || (o.prefetch == "auto" && d.device.is_cuda());

  if (d.writer()) d.removeStaleTemporaries();
  fs::path latest;
  if (o.resume) {
    auto all = d.checkpoints();
    if (all.empty())
      fail(ErrorKind::InvalidArgument, o.outDir, "--resume: no checkpoint in " + d.checkpointRoot());
    latest = all.back();
  } else if (!d.checkpoints().empty()) {
    fail(ErrorKind::InvalidArgument, o.outDir, "the output folder already holds checkpoints of a run: pass --resume "
                                               "to continue it, or choose another --out");
  }
  fs::create_directories(o.outDir);

  AssetBundle assets(o.assetsDir);
  if (!assets.hasTokenTable())
    fail(ErrorKind::Io, o.assetsDir, "no all_tokens.torch in the asset folder; training needs the token table");
  d.openFiles(assets);
  if (d.world > 1) d.shareUsability();
  d.builders.resize(static_cast<size_t>(d.threads));
  for (auto& b : d.builders) b.resize(d.files.size());
  if (d.writer()) d.buildValidation();  // rank 0 validates for all

  at::Tensor tokens = withChromosomeRows(assets.tokenTable(), assets.chromTokenOffset());
  torch::manual_seed(o.seed);
  std::map<std::string, std::string> state;
  std::string weights = o.initModel;
  if (!latest.empty()) {
    state = Impl::readState(latest / "state.txt");
    std::istringstream sig(d.runSignature());
    std::string k, v;
    while (sig >> k >> v)
      if (state[k] != v)
        fail(ErrorKind::InvalidArgument, latest.string(),
             "cannot resume: the checkpoint was made with " + k + " " + state[k] + " but this run has " + v);
    const std::string ranks = state.count("world_size") ? state["world_size"] : "1";
    if (ranks != std::to_string(d.world))
      fail(ErrorKind::InvalidArgument, latest.string(),
           "cannot resume: the checkpoint was made with " + ranks + " data-parallel rank(s) but this run has " +
               std::to_string(d.world) + "; resume with --nproc " + ranks);
    weights = (latest / "model.torch").string();
    o.nHead = stateInt(state, "nhead", latest);
  }
  UceConfig c;
  if (!weights.empty()) {
    NamedTensors sd = loadTensorDict(weights);
    c = inferConfig(sd, weights, o.nHead);
    if (!c.trainingHead) fail(ErrorKind::Format, weights, "the model has no training head (binary_decoder)");
    sd.erase(std::remove_if(sd.begin(), sd.end(), [](const auto& kv) { return kv.first == "pe_embedding.weight"; }),
             sd.end());
    c.nTokens = tokens.size(0);
    if (c.tokenDim != tokens.size(1))
      fail(ErrorKind::Format, weights, "token_dim " + std::to_string(c.tokenDim) + " does not match the asset "
                                       "bundle's token table (" + std::to_string(tokens.size(1)) + ")");
    d.net = UceNetwork(c, /*initialize=*/false);  // every parameter is loaded next
    d.net->loadStateDict(sd, weights, false);
  } else {
    c.nTokens = tokens.size(0);
    c.tokenDim = tokens.size(1);
    c.nLayers = o.nLayers;
    c.dModel = o.dModel;
    c.nHead = o.nHead;
    c.dHid = o.dHid;
    c.outputDim = o.outputDim;
    c.geneHeadDim = c.dModel;
    c.headHidden = o.headHidden;
    if (c.nLayers < 1 || c.dModel < 1 || c.nHead < 1 || c.dModel % c.nHead != 0)
      fail(ErrorKind::InvalidArgument, "", "need layers >= 1 and d_model divisible by nhead");
    d.net = UceNetwork(c);
    if (o.cellGain != 1.0) {
      torch::NoGradGuard noGrad;
      d.net->scaleCellInputOfBinaryDecoder(o.cellGain);
    }
    if (o.firstLayerQkGain != 1.0) d.net->scaleFirstLayerQueryKey(o.firstLayerQkGain);
  }
  if (o.padLength > c.maxLen) fail(ErrorKind::InvalidArgument, "", "pad length exceeds the model's positions");
  d.net->setTokenTable(tokens);
  for (const auto& f : d.files)
    for (int32_t t : f.table.tokenByRank)
      if (t >= c.nTokens) fail(ErrorKind::Format, o.assetsDir, "gene token outside the token table");
  d.net->to(d.device);
  d.net->train(o.dropout);
  d.net->setActivationCheckpointing(o.activationCheckpointing);
  d.net->setTrainingLayerDtype(o.bf16Layers ? torch::kBFloat16 : torch::kFloat);
  // The cell-embedding path first, then the training head (TrainOptions::encoderLrScale).
  std::vector<torch::Tensor> body, head;
  for (auto& p : d.net->named_parameters())
    if (p.value().requires_grad())
      (p.key().rfind("gene_embedding_layer.", 0) == 0 || p.key().rfind("binary_decoder.", 0) == 0 ? head : body)
          .push_back(p.value());
  if (o.depthAwareDecoder) {  // starts at zero: the release's decoder until it learns a slope
    {  // its default initialisation must not move the dropout stream: the same run otherwise
      const torch::Tensor rng = Impl::cpuRngState();
      d.depthHead = torch::nn::Linear(c.geneHeadDim, 1);
      Impl::setCpuRngState(rng);
    }
    torch::NoGradGuard noGrad;
    if (!latest.empty()) {
      const fs::path file = latest / "depth-head.pt";
      if (!fs::exists(file))
        fail(ErrorKind::Format, file.string(), "damaged checkpoint: the depth head is missing; delete this checkpoint "
                                               "folder to resume from an older one");
      NamedTensors sd = loadTensorDict(file.string());
      for (auto& p : d.depthHead->named_parameters()) {
        auto it = std::find_if(sd.begin(), sd.end(), [&](const auto& kv) { return kv.first == p.key(); });
        if (it == sd.end() || !it->second.sizes().equals(p.value().sizes()))
          fail(ErrorKind::Format, file.string(), "damaged checkpoint: no " + p.key() + " of the depth head's shape");
        p.value().copy_(it->second);
      }
    } else {
      d.depthHead->weight.zero_();
      d.depthHead->bias.zero_();
    }
    d.depthHead->to(d.device);
    for (auto& p : d.depthHead->parameters()) head.push_back(p);
  }
  d.params = body;
  d.params.insert(d.params.end(), head.begin(), head.end());
  if (d.world > 1) d.opt.dist->broadcast(d.params);  // every rank starts from rank 0's weights
  if (d.world > 1 && o.overlapGradSync) d.opt.dist->attachOverlapped(d.params, o.gradBucketBytes);
  const auto adamw = torch::optim::AdamWOptions(o.lr).betas({o.beta1, o.beta2}).weight_decay(o.weightDecay);
  if (o.encoderLrScale != 1.0 && !head.empty()) {
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(body, std::make_unique<torch::optim::AdamWOptions>(adamw));
    groups.emplace_back(head, std::make_unique<torch::optim::AdamWOptions>(adamw));
    d.optimizer = std::make_unique<torch::optim::AdamW>(std::move(groups), adamw);
  } else {
    d.optimizer = std::make_unique<torch::optim::AdamW>(d.params, adamw);
  }
  const fs::path metrics = fs::path(o.outDir) / "metrics.jsonl";
  bool restoredRankRng = false;
  if (!latest.empty()) {
    torch::load(*d.optimizer, (latest / "optimizer.pt").string());
    torch::Tensor rngState;
    torch::load(rngState, (latest / "rng.pt").string());
    if (d.world > 1 && fs::exists(latest / "rng-ranks.pt")) {  // every rank continues its own stream
      torch::Tensor ranks;
      torch::load(ranks, (latest / "rng-ranks.pt").string());
      if (ranks.dim() != 2 || ranks.size(0) != d.world || ranks.size(1) != rngState.numel())
        fail(ErrorKind::Format, (latest / "rng-ranks.pt").string(),
             "damaged checkpoint: not one RNG state per rank; delete this checkpoint folder to resume from an older one");
      rngState = ranks[d.rank].clone();
      restoredRankRng = true;
    }
    Impl::setCpuRngState(rngState);
    // Dropout on the GPU draws from the device's generator: continue its stream too (a
    // checkpoint written on the CPU has none; the generator then keeps its seeded state).
    if (d.device.is_cuda() && fs::exists(latest / "rng-cuda.pt")) {
      torch::Tensor cuda;
      torch::load(cuda, (latest / "rng-cuda.pt").string());
      if (cuda.dim() != 2 || cuda.size(0) != d.world || cuda.scalar_type() != torch::kUInt8)
        fail(ErrorKind::Format, (latest / "rng-cuda.pt").string(),
             "damaged checkpoint: not one CUDA RNG state per rank; delete this checkpoint folder to resume from an "
             "older one");
      Impl::setCudaRngState(d.device, cuda[d.rank].clone());
    }
    d.stepsDone = stateInt(state, "step", latest);
    const std::string mine = d.world > 1 ? "rank" + std::to_string(d.rank) + "_" : "";
    d.pos.epoch = stateInt(state, mine + "epoch", latest);
    d.pos.group = stateInt(state, mine + "group", latest);
    d.pos.index = stateInt(state, mine + "index", latest);
    if (d.world > 1) d.pos.taken = stateInt(state, mine + "taken", latest);
    d.consumed = d.pos;
    // Metrics after the checkpoint belong to the abandoned continuation: drop them.
    if (d.writer()) {
      std::ifstream in(metrics);
      std::string line, kept;
      while (std::getline(in, line)) {
        const auto p = line.find("\"step\":");
        if (p != std::string::npos && std::strtoll(line.c_str() + p + 7, nullptr, 10) <= d.stepsDone) kept += line + "\n";
      }
      in.close();
      writeFileAtomic(metrics.string(), kept);
    }
  } else if (d.writer()) {
    writeFileAtomic(metrics.string(), "");
  }
  // Dropout masks: a stream of its own per rank (rank 0 keeps the one-process stream), restored
  // from the checkpoint on a resume (older checkpoints without rng-ranks.pt: reseeded).
  if (d.rank > 0 && !restoredRankRng)
    torch::manual_seed(mix64(mix64(o.seed) ^ static_cast<uint64_t>(d.rank)) ^ static_cast<uint64_t>(d.stepsDone));
}

Trainer::~Trainer() = default;

int64_t Trainer::step() const { return d_->stepsDone; }
Validation Trainer::validate() { return d_->validate(); }
std::string Trainer::writeCheckpoint() { return d_->writeCheckpoint(); }
std::vector<Trainer::StreamCell> Trainer::streamCells(int64_t n) {
  std::vector<StreamCell> out;
  CellCounts c;
  d_->waitForPrefetch();
  for (int64_t i = 0; i < n; ++i) {
    d_->nextCell(c);
    out.push_back({d_->pos.epoch, c.file, c.row});
  }
  return out;
}
void Trainer::setGradientHook(std::function<void(std::vector<at::Tensor>&)> hook) { d_->gradHook = std::move(hook); }
std::string Trainer::summary() const { return d_->net->config().describe(); }

TrainReport Trainer::run(const std::function<bool(const StepMetrics&)>& progress) {
  Impl& d = *d_;
  const auto t0 = std::chrono::steady_clock::now();
  TrainReport rep;
  rep.resumedFrom = d.stepsDone;
  rep.modelSummary = summary();
  const std::string metricsPath = (fs::path(d.opt.outDir) / "metrics.jsonl").string();
  int64_t lastCheckpoint = -1;
  bool progressStop = false;
  while (d.stepsDone < d.opt.maxSteps) {
    bool stopNow = progressStop || (d.opt.stop && d.opt.stop->load());
    if (d.world > 1) stopNow = d.opt.dist->sum({stopNow ? 1.0 : 0.0})[0] > 0;  // all ranks stop together
    if (stopNow) {
      rep.interrupted = true;
      break;
    }
    d.finishCheckpointWrite(/*onlyIfDone=*/true);  // a background write's error stops the run here
    StepMetrics m = d.trainStep();
    if (d.writer() &&
        ((d.opt.validateEvery > 0 && m.step % d.opt.validateEvery == 0) || m.step == d.opt.maxSteps)) {
      Validation v = d.validate();
      m.validated = !d.valSamples.empty();
      m.valLoss = v.loss;
      m.valAuroc = v.auroc;
    }
    if (d.writer()) {
      std::ofstream out(metricsPath, std::ios::app);
      out << m.json() << "\n";
      if (!out) fail(ErrorKind::Io, metricsPath, "cannot append to the metrics file (disk full?)");
    }
    rep.last = m;
    if (d.opt.checkpointEvery > 0 && m.step % d.opt.checkpointEvery == 0) {
      rep.lastCheckpoint = d.writeCheckpoint(d.opt.backgroundCheckpoints);
      lastCheckpoint = m.step;
    }
    if (progress && !progress(m)) {
      if (d.world > 1) {
        progressStop = true;  // agreed on with the other ranks before the next step
        continue;
      }
      rep.interrupted = true;
      break;
    }
  }
  d.waitForPrefetch();  // a stopped run's next micro-batch
  d.finishCheckpointWrite();  // the last periodic checkpoint is on disk before run() returns
  if (lastCheckpoint != d.stepsDone) rep.lastCheckpoint = d.writeCheckpoint();
  if (!rep.interrupted) {
    rep.modelFile = (fs::path(d.opt.outDir) / "model.torch").string();
    if (d.writer()) saveTensorDict(d.cpuStateDict(), rep.modelFile);
  }
  rep.steps = d.stepsDone;
  rep.prefetched = d.prefetchesTaken;
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

TrainReport train(const TrainOptions& options, const std::function<bool(const StepMetrics&)>& progress) {
  Trainer t(options);
  return t.run(progress);
}

}  // namespace uce::model
