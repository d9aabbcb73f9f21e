#include "uce/model/embedder.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <numeric>
#include <thread>
#include <unistd.h>

#include "uce/core/dataset.h"
#include "autocast.h"
#include "uce/core/error.h"
#include "uce/core/text.h"
#include "uce/core/h5ad_writer.h"
#include "uce/core/inspect.h"
#include "uce/core/sha256.h"
#include "uce/model/assets.h"
#include "uce/model/host_memory.h"
#include "uce/model/network.h"
#include "uce/model/new_species.h"
#include "uce/model/tokenizer.h"
#include "uce/model/torch_file.h"

namespace uce::model {

// Cells per forward pass. On the CPU a batch's attention scores (cells x heads x L x L floats)
// are written, exponentiated and read again, so a batch whose scores outgrow the caches and the
// allocator's reuse runs far slower per cell: 400 cells at sample size 1,024 with a 4-head model
// (18.5 MB of scores a cell) took 13.3 s in batches of 32, 8.3 s of 16, 5.4 s of 8, 5.7 s of 4
// on 2 cores (bench/RESULTS.md). The CPU therefore takes as many cells as keep the scores within
// a budget (at least one cell); the GPU takes the whole batch.
namespace {
constexpr double kCpuAttentionBytes = 160.0 * 1024 * 1024;
}  // namespace

size_t cellsPerForward(bool cpu, size_t batch, int64_t heads, int64_t length) {
  if (!cpu) return batch;
  const double perCell = 4.0 * static_cast<double>(heads) * static_cast<double>(length) * static_cast<double>(length);
  const auto fit = static_cast<size_t>(std::max(1.0, std::floor(kCpuAttentionBytes / perCell)));
  return std::min(batch, fit);
}

namespace fs = std::filesystem;
namespace {

// Gene symbols of the counts matrix: var_names or the chosen var column.
std::vector<std::string> geneSymbols(const Dataset& ds, const std::string& countsKey, const std::string& column) {
  const DataFrame& var = ds.varFor(countsKey);
  std::vector<std::string> names;
  if (column.empty()) {
    names = var.index;
  } else {
    const Column* c = var.find(column);
    if (!c) {
      std::string known;
      for (const auto& col : var.columns) known += (known.empty() ? "" : ", ") + col.name;
      fail(ErrorKind::InvalidArgument, ds.path(),
           "no var column '" + column + "' (var columns: " + (known.empty() ? "none" : known) + ")");
    }
    for (size_t i = 0; i < c->size(); ++i) names.push_back(c->valueAsString(i));
  }
  if (ensemblFraction(names) > 0.5) {
    GeneColumnGuess g = guessGeneColumn(var);
    std::string where = column.empty() ? "var_names" : "var['" + column + "']";
    if (g.looksLike == "symbols")
      fail(ErrorKind::InvalidArgument, ds.path(),
           "genes in " + where + " look like Ensembl ids; UCE matches gene symbols: choose the column "
           "with gene symbols (--gene-column " + g.column + ")");
    fail(ErrorKind::InvalidArgument, ds.path(),
         "genes in " + where + " look like Ensembl ids and no var column holds gene symbols; map the "
         "ids to symbols (e.g. with the 10x features file or biomart) before embedding");
  }
  return names;
}

// The options that change the numbers; a resume file is only reused when they match.
std::string runSignature(const EmbedOptions& o, const std::string& modelHash, const std::string& countsKey) {
  std::string s = o.input + "|" + o.species + "|" + modelHash + "|" + countsKey + "|" + o.geneColumn + "|" +
                  std::to_string(o.seed) + "|" + std::to_string(o.sampleSize) + "|" +
                  std::to_string(o.padLength) + "|" + std::to_string(o.minCellsPerGene) + "|" +
                  std::to_string(o.minGenesPerCell) + "|" + o.precision + "|" + std::to_string(o.nHead);
  return sha256(s);
}

// "<output>.uce-resume": 64-byte signature, int64 output dim, int64 rows done, then rows done x
// dim float32 (NaN rows for cells that were filtered out).
class ResumeFile {
 public:
  ResumeFile(std::string path, std::string signature, int64_t dim)
      : path_(std::move(path)), sig_(std::move(signature)), dim_(dim) {
    std::ifstream in(path_, std::ios::binary);
    char sig[64] = {};
    int64_t dim2 = 0, rows = 0;
    if (in.read(sig, 64) && in.read(reinterpret_cast<char*>(&dim2), 8) && in.read(reinterpret_cast<char*>(&rows), 8) &&
        std::string(sig, 64) == sig_ && dim2 == dim_ && rows >= 0) {
      auto size = fs::file_size(path_);
      if (size >= 80 + static_cast<uint64_t>(rows * dim_) * 4) rowsDone_ = rows;
    }
    in.close();
    if (rowsDone_ == 0) {
      std::ofstream out(path_, std::ios::binary | std::ios::trunc);
      if (!out) fail(ErrorKind::Io, path_, "cannot create the resume file");
      writeHeader(out, 0);
    } else {
      fs::resize_file(path_, 80 + static_cast<uint64_t>(rowsDone_ * dim_) * 4);
    }
  }
  int64_t rowsDone() const { return rowsDone_; }
  void append(const float* rows, int64_t n) {
    std::fstream f(path_, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(80 + rowsDone_ * dim_ * 4);
    f.write(reinterpret_cast<const char*>(rows), static_cast<std::streamsize>(n * dim_ * 4));
    rowsDone_ += n;
    f.seekp(0);
    writeHeader(f, rowsDone_);
    f.flush();
    if (!f) fail(ErrorKind::Io, path_, "cannot write the resume file (disk full?)");
  }
  void read(int64_t row0, int64_t n, float* out) const {
    std::ifstream in(path_, std::ios::binary);
    in.seekg(80 + row0 * dim_ * 4);
    in.read(reinterpret_cast<char*>(out), static_cast<std::streamsize>(n * dim_ * 4));
    if (!in) fail(ErrorKind::Io, path_, "cannot read the resume file");
  }
  void remove() { fs::remove(path_); }

 private:
  void writeHeader(std::ostream& out, int64_t rows) {
    out.write(sig_.data(), 64);
    out.write(reinterpret_cast<const char*>(&dim_), 8);
    out.write(reinterpret_cast<const char*>(&rows), 8);
  }
  std::string path_, sig_;
  int64_t dim_;
  int64_t rowsDone_ = 0;
};

torch::Device chooseDevice(const std::string& want) {
  if (want == "cpu") return torch::kCPU;
  if (want == "cuda" || want.rfind("cuda:", 0) == 0) {
    if (!torch::cuda::is_available())
      fail(ErrorKind::InvalidArgument, "", "--device " + want + " asked for, but no CUDA device is available "
                                           "(this build's LibTorch " TORCH_VERSION " may be CPU-only)");
    if (want == "cuda") return torch::kCUDA;
    char* end = nullptr;
    const long index = std::strtol(want.c_str() + 5, &end, 10);
    if (*end != '\0' || index < 0 || index >= static_cast<long>(torch::cuda::device_count()))
      fail(ErrorKind::InvalidArgument, "", "--device " + want + ": there are " +
                                               std::to_string(torch::cuda::device_count()) + " CUDA devices");
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  if (want != "auto") fail(ErrorKind::InvalidArgument, "", "--device must be cpu, cuda, cuda:N or auto");
  return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
}

}  // namespace

EmbedReport embedDataset(const EmbedOptions& opt, const ProgressFn& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  // Large CPU buffers are reused batch after batch, whichever thread runs this (host_memory.h).
  std::optional<HostCacheScope> hostCache;
  if (opt.reuseHostBuffers) hostCache.emplace();
  EmbedReport rep;
  if (opt.assetsDir.empty()) fail(ErrorKind::InvalidArgument, "", "--assets DIR is required");
  if (opt.batchSize <= 0 || opt.sampleSize <= 0 || opt.padLength < opt.sampleSize + 3)
    fail(ErrorKind::InvalidArgument, "", "batch size and sample size must be positive, pad length > sample size");
  const bool inPlace = opt.inPlace || (!opt.output.empty() && fs::exists(opt.output) && fs::exists(opt.input) &&
                                       fs::equivalent(opt.input, opt.output));
  if (opt.output.empty() && !inPlace) fail(ErrorKind::InvalidArgument, "", "--out FILE is required (or --in-place)");
  const std::string output = inPlace ? opt.input : opt.output;

  auto ds = openDataset(opt.input);
  rep.cells = ds->cells();
  CountsChoice counts = chooseCountsMatrix(*ds, opt.countsKey);
  rep.countsKey = counts.key;
  rep.countsReason = counts.reason;
  const MatrixInfo mi = ds->matrix(counts.key);
  rep.genes = mi.cols;
  std::vector<std::string> symbols = geneSymbols(*ds, counts.key, opt.geneColumn);

  // A new species: the bundle extended by it (saved, or reused from an earlier run).
  std::string assetsDir = opt.assetsDir;
  if (!opt.newSpeciesEmbeddings.empty() || !opt.newSpeciesPositions.empty()) {
    if (opt.newSpeciesEmbeddings.empty() || opt.newSpeciesPositions.empty())
      fail(ErrorKind::InvalidArgument, "",
           "a new species needs both --new-species-embeddings (.pt) and --new-species-positions (CSV)");
    std::string extDir = opt.extendedAssetsDir;
    if (extDir.empty()) {
      fs::path a = fs::absolute(opt.assetsDir).lexically_normal();
      if (!a.has_filename()) a = a.parent_path();
      extDir = (fs::absolute(output).parent_path() / (a.filename().string() + "+" + opt.species)).string();
    }
    NewSpeciesOptions ns;
    ns.name = opt.species;
    ns.proteinEmbeddings = opt.newSpeciesEmbeddings;
    ns.positionsCsv = opt.newSpeciesPositions;
    ns.seed = opt.newSpeciesSeed;
    ns.modelFile = opt.modelFile;
    NewSpeciesReport nr = addSpecies(opt.assetsDir, ns, extDir);
    assetsDir = nr.dir;
    rep.assetsExtended = true;
    rep.extensionReused = nr.reused;
    rep.newSpeciesOffset = nr.offset;
    rep.newSpeciesChromTokens = nr.chromTokens;
    rep.newSpeciesSeed = nr.seed;
    if (nr.genesWithoutPosition > 0)
      rep.warnings.push_back(std::to_string(nr.genesWithoutPosition) + " of " + std::to_string(nr.genes) + " " +
                             opt.species + " protein embeddings have no position in " + opt.newSpeciesPositions +
                             " and are never drawn");
  }
  rep.assetsDir = assetsDir;

  // Tokens of the dataset's genes for this species.
  AssetBundle assets(assetsDir);
  const SpeciesTokens& sp = assets.species(opt.species);
  GeneTable table;
  table.token.assign(static_cast<size_t>(mi.cols), -1);
  table.chrom.assign(static_cast<size_t>(mi.cols), 0);
  table.start.assign(static_cast<size_t>(mi.cols), 0);
  int64_t noPosition = 0;
  for (int64_t c = 0; c < mi.cols; ++c) {
    const std::string g = toUpper(symbols[static_cast<size_t>(c)]);
    auto it = sp.index.find(g);
    if (it == sp.index.end()) continue;
    auto pos = sp.chromPos.find(g);
    if (pos == sp.chromPos.end()) { ++noPosition; continue; }
    table.token[static_cast<size_t>(c)] = static_cast<int32_t>(sp.offset + it->second);
    table.chrom[static_cast<size_t>(c)] = pos->second.first;
    table.start[static_cast<size_t>(c)] = pos->second.second;
    ++rep.genesMatched;
  }
  if (rep.genesMatched == 0)
    fail(ErrorKind::InvalidArgument, ds->path(),
         "none of the " + std::to_string(mi.cols) + " genes match a " + opt.species +
             " protein embedding: check --species and --gene-column (first genes: " +
             (symbols.empty() ? "" : symbols[0]) + (symbols.size() > 1 ? ", " + symbols[1] : "") + ")");
  const double matchedShare = static_cast<double>(rep.genesMatched) / static_cast<double>(mi.cols);
  if (matchedShare < 0.5)
    rep.warnings.push_back("WARNING: only " + std::to_string(rep.genesMatched) + " of " + std::to_string(mi.cols) +
                           " genes (" + std::to_string(static_cast<int>(matchedShare * 100)) +
                           "%) match " + opt.species + " protein embeddings: is the species right?");
  if (noPosition > 0)
    rep.warnings.push_back(std::to_string(noPosition) + " genes have an embedding but no chromosome position and were left out");

  // Options checked before any work starts.
  const std::string modelFile = opt.modelFile.empty() ? assetsDir + "/model.torch" : opt.modelFile;
  if (!fs::exists(modelFile)) fail(ErrorKind::Io, modelFile, "model file not found");
  const torch::Device device = chooseDevice(opt.device);
  rep.device = device.is_cuda() ? "cuda" : "cpu";
  if (opt.attentionKernels != "auto" && opt.attentionKernels != "flash" && opt.attentionKernels != "cudnn")
    fail(ErrorKind::InvalidArgument, "", "--attention-kernels must be auto, flash or cudnn");
  if (opt.precision != "fp32" && opt.precision != "bf16" && opt.precision != "bf16-autocast")
    fail(ErrorKind::InvalidArgument, "", "--precision must be fp32, bf16 or bf16-autocast");
  const bool bf16 = opt.precision != "fp32" && device.is_cuda();
  if (opt.precision != "fp32" && !device.is_cuda())
    rep.warnings.push_back("bf16 runs on CUDA only; using fp32 on the CPU");
  // bf16: the transformer layers hold bf16 weights and activations. bf16-autocast: fp32
  // weights and residual stream, matmuls and attention in bf16. Token inputs and the decoder
  // stay fp32 in both.
  const bool autocast = bf16 && opt.precision == "bf16-autocast";

  // The model loads after pass 1 below. (Loading it on a helper thread beside the pass was
  // tried in session 10 and taken back: the app's demo pipeline stalled in CI.)
  struct Loaded {
    UceNetwork net{nullptr};
    UceConfig cfg;
    double seconds = 0;
  };
  auto loadModel = [&]() -> Loaded {
    const auto tl = std::chrono::steady_clock::now();
    Loaded m;
    NamedTensors sd = loadTensorDict(modelFile);
    int64_t nhead = opt.nHead > 0 ? opt.nHead : (assets.manifestNhead() > 0 ? assets.manifestNhead() : 20);
    m.cfg = inferConfig(sd, modelFile, nhead);
    UceConfig& cfg = m.cfg;
    if (opt.nLayers > 0 && opt.nLayers != cfg.nLayers)
      fail(ErrorKind::InvalidArgument, modelFile,
           "--nlayers " + std::to_string(opt.nLayers) + " but the weights have " + std::to_string(cfg.nLayers) + " layers");
    at::Tensor tokens = assets.tokenTable();
    if (tokens.defined()) {
      if (tokens.dim() != 2 || tokens.size(1) != cfg.tokenDim)
        fail(ErrorKind::Format, assetsDir + "/all_tokens.torch",
             "token table does not fit the model (token_dim " + std::to_string(cfg.tokenDim) + ")");
      tokens = withChromosomeRows(tokens, assets.chromTokenOffset());
      cfg.nTokens = tokens.size(0);
      // The table replaces the state dict's pe_embedding, which may have fewer rows (a model
      // saved before species were added).
      sd.erase(std::remove_if(sd.begin(), sd.end(), [](const auto& kv) { return kv.first == "pe_embedding.weight"; }),
               sd.end());
    } else if (!std::any_of(sd.begin(), sd.end(), [](const auto& kv) { return kv.first == "pe_embedding.weight"; })) {
      fail(ErrorKind::Io, assetsDir, "no all_tokens.torch here and the model carries no pe_embedding");
    }
    m.net = UceNetwork(cfg, /*initialize=*/false);  // every parameter is loaded next
    // The loaded tensors become the parameters (no copy): sd and tokens are dropped next.
    m.net->loadStateDict(sd, modelFile, /*requireTokens=*/!tokens.defined(), /*adopt=*/true);
    sd.clear();
    if (tokens.defined()) m.net->setTokenTable(tokens, /*adopt=*/true);
    tokens = at::Tensor();
    m.net->to(device);
    m.net->prepareInference(bf16 && !autocast ? torch::kBFloat16 : torch::kFloat, /*foldBiases=*/!autocast);
    m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - tl).count();
    return m;
  };

  // Pass 1 (release filter): genes expressed in >= minCellsPerGene cells.
  const auto tCount = std::chrono::steady_clock::now();
  std::vector<int64_t> cellsPerGene(static_cast<size_t>(mi.cols), 0);
  if (opt.minCellsPerGene > 0) {
    RowStream stream(*ds, counts.key, opt.chunkCells);
    CsrBlock b;
    while (stream.next(b)) {
      for (size_t k = 0; k < b.indices.size(); ++k)
        if (b.values[k] > 0) ++cellsPerGene[static_cast<size_t>(b.indices[k])];
      if (progress && !progress({stream.rowsDone(), rep.cells, 0, 0, "counting genes"}))
        fail(ErrorKind::Cancelled, ds->path(), "cancelled");
    }
  }
  std::vector<uint8_t> geneKept(static_cast<size_t>(mi.cols), 1);
  for (int64_t c = 0; c < mi.cols; ++c) {
    if (cellsPerGene[static_cast<size_t>(c)] < opt.minCellsPerGene) {
      geneKept[static_cast<size_t>(c)] = 0;
      table.token[static_cast<size_t>(c)] = -1;
    }
    rep.genesKept += geneKept[static_cast<size_t>(c)] && table.token[static_cast<size_t>(c)] >= 0;
  }
  table.finalize();
  rep.countSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - tCount).count();

  // Model.
  Loaded loaded = loadModel();
  rep.loadSeconds = loaded.seconds;
  UceNetwork net = loaded.net;
  const UceConfig cfg = loaded.cfg;
  const int64_t maxToken = net->config().nTokens;
  for (size_t c = 0; c < table.token.size(); ++c)
    if (table.token[c] >= maxToken)
      fail(ErrorKind::Format, assetsDir, "gene token " + std::to_string(table.token[c]) +
                                                 " is outside the model's token table (" + std::to_string(maxToken) + " rows)");
  for (size_t c = 0; c < table.token.size(); ++c)
    if (table.token[c] >= 0 && sp.chromTokenOffset + table.chrom[c] >= maxToken)
      fail(ErrorKind::Format, assetsDir, "chromosome token " + std::to_string(sp.chromTokenOffset + table.chrom[c]) +
                                             " is outside the model's token table (" + std::to_string(maxToken) + " rows)");
  if (opt.padLength > cfg.maxLen)
    fail(ErrorKind::InvalidArgument, "", "pad length exceeds the model's positions");
  rep.modelSummary = cfg.describe();
  // Hashing a 2.6 GB model takes seconds: it runs beside the embedding and is only needed for
  // the resume signature check below and the provenance at the end.
  auto hashFuture = std::async(std::launch::async, [modelFile] { return sha256File(modelFile); });
  // The resume file is reused only for the same model file (path, size, modification time).
  const std::string modelStamp =
      fs::absolute(modelFile).string() + ":" + std::to_string(fs::file_size(modelFile)) + ":" +
      std::to_string(fs::last_write_time(modelFile).time_since_epoch().count());

  SentenceOptions so;
  so.sampleSize = opt.sampleSize;
  so.padLength = opt.padLength;
  so.chromTokenOffset = sp.chromTokenOffset;
  so.seed = opt.seed;
  const int threads = opt.threads > 0 ? opt.threads : std::max(1u, std::thread::hardware_concurrency());
  // LibTorch's OpenMP pool may start with one thread: on the CPU the network gets them all.
  if (!device.is_cuda()) torch::set_num_threads(threads);
  const int64_t dim = cfg.outputDim;

  // Pass 2: embed rows [rowBegin, rowEnd) in chunks; progress is kept in the resume file. A
  // shard worker handles its share of the rows; the merge step reads every shard's file.
  const int shards = std::max(1, opt.shards);
  auto shardRange = [&](int k) {
    return std::make_pair(rep.cells * k / shards, rep.cells * (k + 1) / shards);
  };
  auto resumePath = [&](int k) {
    return shards == 1 ? output + ".uce-resume"
                       : output + ".uce-resume." + std::to_string(k) + "-of-" + std::to_string(shards);
  };
  const std::string signature = runSignature(opt, modelStamp, counts.key);
  auto tEmbed = std::chrono::steady_clock::now();

  // Reads and tokenizes one chunk; runs on a helper thread while the network works on the
  // previous chunk (host work overlapped with the device).
  struct Prepared {
    int64_t row0 = 0, n = 0;
    std::vector<int32_t> sentences;  // [n, padLength]
    std::vector<int> lengths;        // [n]: > 0 tokens, 0 no matched gene, -1 filtered out
  };
  auto prepare = [&](int64_t row0, int64_t n) {
    Prepared p;
    p.row0 = row0;
    p.n = n;
    CsrBlock block = ds->readRows(counts.key, row0, n);
    p.sentences.assign(static_cast<size_t>(n * opt.padLength), 0);
    p.lengths.assign(static_cast<size_t>(n), 0);
    // Tokenize on worker threads: cell i's sentence depends only on (seed, row0 + i).
    std::vector<std::thread> pool;
    std::vector<std::exception_ptr> errors(static_cast<size_t>(threads));
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        try {
          SentenceBuilder builder(table, so);
          for (int64_t i = t; i < n; i += threads) {
            const int64_t a = block.indptr[static_cast<size_t>(i)], b = block.indptr[static_cast<size_t>(i + 1)];
            int64_t expressed = 0;  // release filter: expressed genes among kept genes
            for (int64_t k = a; k < b; ++k)
              expressed += block.values[static_cast<size_t>(k)] > 0 && geneKept[static_cast<size_t>(block.indices[static_cast<size_t>(k)])];
            if (expressed < opt.minGenesPerCell) { p.lengths[static_cast<size_t>(i)] = -1; continue; }
            p.lengths[static_cast<size_t>(i)] = builder.build(block.indices.data() + a, block.values.data() + a, b - a,
                                                              static_cast<uint64_t>(row0 + i),
                                                              p.sentences.data() + i * opt.padLength);
          }
        } catch (...) {
          errors[static_cast<size_t>(t)] = std::current_exception();
        }
      });
    for (auto& th : pool) th.join();
    for (auto& e : errors)
      if (e) std::rethrow_exception(e);
    return p;
  };

  // A chunk whose batches are queued on the device; collect() turns it into [n, dim] rows.
  struct InFlight {
    int64_t row0 = 0, n = 0;
    std::vector<int64_t> order;                             // cells in batch order
    std::vector<std::pair<torch::Tensor, size_t>> results;  // [B, dim] on the device, first index in `order`
  };
  const bool pinned = device.is_cuda();
  // UCE_EMBED_TRACE=1: wait for the device after every batch and print its time, shape and
  // attention kernels (and each wait for the host), to find where a pass's time goes. It
  // removes the overlap of host and device, so the pass itself gets slower.
  const bool trace = [] {
    const char* v = std::getenv("UCE_EMBED_TRACE");
    return v && *v && std::string(v) != "0";
  }();
  auto traceMark = std::chrono::steady_clock::now();
  auto traceLap = [&traceMark] {
    const auto now = std::chrono::steady_clock::now();
    const double ms = std::chrono::duration<double, std::milli>(now - traceMark).count();
    traceMark = now;
    return ms;
  };
  // Queues the network on one prepared chunk. Cells of one sentence length form batches of
  // their own (a length group's last batch is just smaller): no padding anywhere, so attention
  // runs without a mask (the fastest fused kernels on CUDA) and a cell's embedding cannot
  // depend on its batch. Returns without waiting for the device.
  auto enqueueChunk = [&](const Prepared& p) {
    InFlight f;
    f.row0 = p.row0;
    f.n = p.n;
    for (int64_t i = 0; i < p.n; ++i) {
      if (p.lengths[static_cast<size_t>(i)] > 0) f.order.push_back(i);
      else if (p.lengths[static_cast<size_t>(i)] < 0) ++rep.cellsDroppedFilter;
      else ++rep.cellsNoMatchedGenes;
    }
    std::stable_sort(f.order.begin(), f.order.end(), [&](int64_t a, int64_t b) {
      return p.lengths[static_cast<size_t>(a)] < p.lengths[static_cast<size_t>(b)];
    });
    const size_t bs = static_cast<size_t>(opt.batchSize);
    std::vector<std::pair<size_t, size_t>> batches;  // ranges of `order`, one length each
    for (size_t g0 = 0; g0 < f.order.size();) {
      size_t g1 = g0;
      while (g1 < f.order.size() && p.lengths[static_cast<size_t>(f.order[g1])] == p.lengths[static_cast<size_t>(f.order[g0])]) ++g1;
      const size_t step = cellsPerForward(device.is_cpu(), bs, net->config().nHead, p.lengths[static_cast<size_t>(f.order[g0])]);
      for (size_t b0 = g0; b0 < g1; b0 += step) batches.emplace_back(b0, std::min(g1, b0 + step));
      g0 = g1;
    }
    torch::NoGradGuard noGrad;
    for (const auto& [b0, b1] : batches) {
      const int64_t B = static_cast<int64_t>(b1 - b0);
      const int64_t L = p.lengths[static_cast<size_t>(f.order[b0])];
      // Page-locked host buffers let the copies to the GPU run asynchronously.
      auto tok = torch::empty({B, L}, torch::TensorOptions().dtype(torch::kLong).pinned_memory(pinned));
      int64_t* tokP = tok.data_ptr<int64_t>();
      for (int64_t r = 0; r < B; ++r) {
        const int32_t* sent = p.sentences.data() + f.order[b0 + static_cast<size_t>(r)] * opt.padLength;
        std::copy(sent, sent + L, tokP + r * L);
      }
      auto tokD = tok.to(device, /*non_blocking=*/true);
      // cuDNN's attention builds a plan per batch shape: worth it for the full batches (few
      // shapes, many calls), not for a length group's last, odd-sized batch.
      if (device.is_cuda())
        UceNetworkImpl::preferCuDnnAttention(opt.attentionKernels == "cudnn" ||
                                             (opt.attentionKernels == "auto" && b1 - b0 == bs));
      torch::Tensor emb;
      if (autocast) {
        // Weights stay fp32; matmuls run in bf16 under autocast, the output is fp32.
        setCudaAutocast(true);
        emb = net->embed(tokD, torch::Tensor()).to(torch::kFloat);
        setCudaAutocast(false);
        emb = torch::nn::functional::normalize(emb, torch::nn::functional::NormalizeFuncOptions().dim(1));
      } else {
        emb = net->embed(tokD, torch::Tensor());
      }
      f.results.emplace_back(emb, b0);
      rep.cellsEmbedded += B;
      ++rep.batches;
      if (trace) {
        if (device.is_cuda()) torch::cuda::synchronize();
        const bool cudnn = opt.attentionKernels == "cudnn" || (opt.attentionKernels == "auto" && b1 - b0 == bs);
        const double ms = traceLap();
        std::fprintf(stderr, "trace: batch %lld: %lld cells of length %lld, %s attention, %.1f ms (%.1f us a cell)\n",
                     static_cast<long long>(rep.batches), static_cast<long long>(B), static_cast<long long>(L),
                     device.is_cuda() ? (cudnn ? "cudnn" : "flash") : "cpu", ms, ms * 1000.0 / static_cast<double>(B));
        const HostCacheStats hc = hostCacheStats();
        std::fprintf(stderr, "trace: host buffers: %llu reused, %llu new, %.1f MB cached, %.1f MB in use\n",
                     static_cast<unsigned long long>(hc.hits), static_cast<unsigned long long>(hc.misses),
                     static_cast<double>(hc.cachedBytes) / 1e6, static_cast<double>(hc.liveBytes) / 1e6);
      }
    }
    return f;
  };
  std::vector<float> out;
  auto collectChunk = [&](const InFlight& f) {
    out.assign(static_cast<size_t>(f.n * dim), std::numeric_limits<float>::quiet_NaN());
    for (const auto& [emb, b0] : f.results) {
      const torch::Tensor e = emb.to(torch::kCPU).contiguous();
      const float* ep = e.data_ptr<float>();
      for (int64_t r = 0; r < e.size(0); ++r)
        std::copy(ep + r * dim, ep + (r + 1) * dim, out.data() + f.order[b0 + static_cast<size_t>(r)] * dim);
    }
  };

  auto runRange = [&](ResumeFile& resume, int64_t begin, int64_t end) {
    int64_t row = begin + resume.rowsDone();
    rep.resumedFrom += resume.rowsDone();
    auto next = [&](int64_t r0) {
      return std::async(std::launch::async, [&, r0] {
        return r0 < end ? std::optional<Prepared>(prepare(r0, std::min(opt.chunkCells, end - r0))) : std::nullopt;
      });
    };
    // Chunk k+1 is read and tokenized while chunk k runs on the device, and chunk k's results
    // are collected only after chunk k+1 is queued, so the device never waits on the host.
    auto finish = [&](const InFlight& f) {
      collectChunk(f);
      resume.append(out.data(), f.n);
      row = f.row0 + f.n;
      if (progress) {
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - tEmbed).count();
        const double rate = secs > 0 ? static_cast<double>(row - begin - rep.resumedFrom) / secs : 0;
        if (!progress({row - begin, end - begin, rate, rate > 0 ? static_cast<double>(end - row) / rate : 0, "embedding"}))
          fail(ErrorKind::Cancelled, ds->path(),
               "cancelled after " + std::to_string(row) + " cells; run again to resume");
      }
    };
    auto pending = next(row);
    std::optional<InFlight> queued;
    while (true) {
      if (trace) traceLap();
      std::optional<Prepared> cur = pending.get();
      if (!cur) break;
      if (trace) std::fprintf(stderr, "trace: waited %.1f ms for chunk at row %lld\n", traceLap(), static_cast<long long>(cur->row0));
      pending = next(cur->row0 + cur->n);
      InFlight f = enqueueChunk(*cur);
      if (queued) finish(*queued);
      queued = std::move(f);
    }
    if (queued) finish(*queued);
  };

  std::vector<std::unique_ptr<ResumeFile>> parts;
  if (opt.shardIndex >= 0) {
    // Shard worker: embed this shard's rows into its own resume file; the merge writes the output.
    if (opt.shardIndex >= shards) fail(ErrorKind::InvalidArgument, "", "--shard must be below --shards");
    auto [b0, b1] = shardRange(opt.shardIndex);
    ResumeFile resume(resumePath(opt.shardIndex), signature, dim);
    runRange(resume, b0, b1);
    rep.embedSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - tEmbed).count();
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return rep;
  }
  for (int k = 0; k < shards; ++k) {
    auto [b0, b1] = shardRange(k);
    parts.push_back(std::make_unique<ResumeFile>(resumePath(k), signature, dim));
    if (shards == 1) {
      runRange(*parts.back(), b0, b1);
    } else if (parts.back()->rowsDone() != b1 - b0) {
      parts.back()->remove();
      fail(ErrorKind::Io, resumePath(k), "shard " + std::to_string(k) + " of " + std::to_string(shards) +
                                             " is incomplete (its worker failed or was stopped); run again");
    }
  }
  // Reads rows [r0, r0 + n) of the result from the shard files.
  auto readRows = [&](int64_t r0, int64_t n, float* dst) {
    for (int k = 0; k < shards && n > 0; ++k) {
      auto [b0, b1] = shardRange(k);
      if (r0 >= b1) continue;
      const int64_t take = std::min(n, b1 - r0);
      parts[static_cast<size_t>(k)]->read(r0 - b0, take, dst);
      dst += take * dim;
      r0 += take;
      n -= take;
    }
  };
  rep.embedSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - tEmbed).count();
  const auto tWrite = std::chrono::steady_clock::now();
  if (progress) progress({rep.cells, rep.cells, 0, 0, "writing"});

  // Write X_uce, the kept-cell flag and provenance.
  std::vector<uint8_t> kept(static_cast<size_t>(rep.cells), 0);
  const std::string modelHash = hashFuture.get();
  auto provenance = [&](auto& w) {
    w.setUns("uce/model_file", UnsValue::str(fs::path(modelFile).filename().string()));
    w.setUns("uce/model_sha256", UnsValue::str(modelHash));
    w.setUns("uce/model", UnsValue::str(cfg.describe()));
    w.setUns("uce/species", UnsValue::str(opt.species));
    w.setUns("uce/counts", UnsValue::str(counts.key));
    w.setUns("uce/sample_size", UnsValue::integer(opt.sampleSize));
    w.setUns("uce/seed", UnsValue::integer(static_cast<int64_t>(opt.seed)));
    w.setUns("uce/min_cells_per_gene", UnsValue::integer(opt.minCellsPerGene));
    w.setUns("uce/min_genes_per_cell", UnsValue::integer(opt.minGenesPerCell));
    w.setUns("uce/genes_matched", UnsValue::integer(rep.genesMatched));
    w.setUns("uce/precision", UnsValue::str(opt.precision));
    w.setUns("uce/version", UnsValue::str(UCE_VERSION));
  };
  const int64_t block_ = 4096;
  std::vector<float> buf;
  if (ds->format() == "h5ad") {
    ResultsWriter w(opt.input, output);
    w.beginObsm("X_uce", dim);
    for (int64_t r0 = 0; r0 < rep.cells; r0 += block_) {
      const int64_t n = std::min(block_, rep.cells - r0);
      buf.resize(static_cast<size_t>(n * dim));
      readRows(r0, n, buf.data());
      for (int64_t i = 0; i < n; ++i) kept[static_cast<size_t>(r0 + i)] = !std::isnan(buf[static_cast<size_t>(i * dim)]);
      w.writeObsmRows("X_uce", r0, buf.data(), n);
    }
    w.setObsColumn(Column::makeBools("uce_kept", kept));
    provenance(w);
    w.commit();
  } else {
    // 10x / MTX / CSV input: a new .h5ad with the counts as X, obs, var and X_uce.
    H5adWriter w(output, mi.cols);
    RowStream copy(*ds, counts.key, opt.chunkCells);
    CsrBlock b;
    while (copy.next(b)) w.appendRows(b);
    DenseMatrix m;
    m.rows = rep.cells;
    m.cols = dim;
    m.data.resize(static_cast<size_t>(rep.cells * dim));
    readRows(0, rep.cells, m.data.data());
    for (int64_t i = 0; i < rep.cells; ++i) kept[static_cast<size_t>(i)] = !std::isnan(m.data[static_cast<size_t>(i * dim)]);
    DataFrame obs = ds->obs();
    obs.set(Column::makeBools("uce_kept", kept));
    w.setObs(obs);
    w.setVar(ds->varFor(counts.key));
    w.setObsm("X_uce", m);
    provenance(w);
    w.commit();
  }
  for (auto& part : parts) part->remove();
  if (shards > 1) {  // the workers embedded; count what they produced
    rep.cellsEmbedded = std::count(kept.begin(), kept.end(), uint8_t(1));
    rep.cellsDroppedFilter = rep.cells - rep.cellsEmbedded;
  }
  rep.writeSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - tWrite).count();
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

}  // namespace uce::model
