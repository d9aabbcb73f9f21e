// Sampling cells of the synthetic world and streaming them into .h5ad files, chunk by chunk.
#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "synth_random.h"
#include "synth_world.h"
#include "uce/core/error.h"
#include "uce/core/h5ad_writer.h"

#ifndef UCE_VERSION
#define UCE_VERSION "unknown"
#endif

namespace uce::synth {
namespace {

// Expression of one cell type in one batch of one dataset, over var columns.
struct Profile {
  // Genes drawn negative-binomial: column, share of the library, gamma constants for theta.
  std::vector<int32_t> nbCol;
  std::vector<double> nbShare, nbTheta, nbD, nbC;
  // Genes drawn Poisson through one multinomial: columns, alias table over their shares.
  std::vector<int32_t> poisCol;
  AliasTable poisAlias;
  double poisShare = 0;
};

struct DatasetModel {
  std::string name, species, tissue, disease;
  const SpeciesGenes* genes = nullptr;
  int64_t cells = 0;
  uint64_t stream = 0;               // hash of the name: part of every chunk's seed
  std::vector<int> types;            // cell-type ids present in the tissue
  std::vector<double> typeCum;       // running sums of their shares
  std::vector<std::string> batches;  // "<dataset>_b1", ...
  std::vector<double> batchCum, batchLibrary;
  std::vector<uint8_t> batchDiseased;
  std::vector<Profile> profiles;     // [batch * types.size() + slot]
};

struct Chunk {
  CsrBlock block;
  std::vector<uint8_t> typeSlot, batch;
};

std::vector<double> cumulative(const std::vector<double>& w) {
  std::vector<double> c(w.size());
  double s = 0;
  for (size_t i = 0; i < w.size(); ++i) c[i] = (s += w[i]);
  return c;
}

// Shares (sum 1) of each gene of `sp`, in token order, for type t with or without disease.
std::vector<double> typeShares(const World& w, const SpeciesGenes& sp, int t, bool diseased,
                               bool kidneyDisease) {
  const size_t n = sp.symbols.size();
  std::vector<double> lp(n);
  std::vector<double> diseaseFold;
  if (diseased) {
    diseaseFold.assign(static_cast<size_t>(w.nConcepts), 0.0);
    for (const auto& [c, f] : w.diseaseProgram) diseaseFold[static_cast<size_t>(c)] += f;
    // Norn cells lose EPO production in chronic kidney disease.
    if (kidneyDisease && w.epoConcept >= 0 && t == cellTypeIndex(nornTypeName()))
      diseaseFold[static_cast<size_t>(w.epoConcept)] -= 1.5;
  }
  double mx = -1e300;
  for (size_t g = 0; g < n; ++g) {
    const int32_t c = sp.geneConcept[g];
    lp[g] = w.logMean(c, static_cast<size_t>(t), w.sigma) + sp.divergence[g] + (diseased ? diseaseFold[static_cast<size_t>(c)] : 0.0);
    mx = std::max(mx, lp[g]);
  }
  double sum = 0;
  for (auto& x : lp) sum += (x = std::exp(x - mx));
  for (auto& x : lp) x /= sum;
  return lp;
}

DatasetModel buildModel(const World& w, const std::string& species, const std::string& tissue,
                        int64_t cells) {
  DatasetModel m;
  m.name = species + "_" + tissue;
  m.species = species;
  m.tissue = tissue;
  m.cells = cells;
  m.stream = hashString(m.name);
  for (const auto& sp : w.species)
    if (sp.name == species) m.genes = &sp;
  const SpeciesGenes& sp = *m.genes;
  const TissueDef* td = nullptr;
  for (const auto& t : tissueDefs())
    if (tissue == t.name) td = &t;
  m.disease = td->disease;

  // Composition: Norn cells get their share, the others split the rest by weight.
  std::vector<double> share;
  double wsum = 0;
  for (const auto& [name, weight] : td->composition) wsum += weight;
  for (const auto& [name, weight] : td->composition) {
    m.types.push_back(cellTypeIndex(name));
    share.push_back((1.0 - td->norn) * weight / wsum);
  }
  m.types.push_back(cellTypeIndex(nornTypeName()));
  share.push_back(td->norn);
  m.typeCum = cumulative(share);

  // Batches: three donors; library-size factors 0.6 / 1.0 / 1.6 in a per-dataset order; the
  // last donor is diseased.
  Rng br(deriveSeed(w.opt.seed, m.stream, 0xba7c4ULL));
  std::vector<double> lib = {0.6, 1.0, 1.6};
  for (size_t i = lib.size(); i > 1; --i) std::swap(lib[i - 1], lib[br.below(i)]);
  const std::vector<double> batchShare = {0.4, 0.35, 0.25};
  for (size_t b = 0; b < 3; ++b) {
    m.batches.push_back(m.name + "_b" + std::to_string(b + 1));
    m.batchLibrary.push_back(lib[b]);
    m.batchDiseased.push_back(b == 2);
  }
  m.batchCum = cumulative(batchShare);

  // Shares in token order, ambient profile of the tissue (healthy, composition-weighted).
  const size_t n = sp.symbols.size();
  std::vector<std::vector<double>> healthy(m.types.size()), sick(m.types.size());
  std::vector<double> ambient(n, 0.0);
  for (size_t s = 0; s < m.types.size(); ++s) {
    healthy[s] = typeShares(w, sp, m.types[s], false, false);
    sick[s] = typeShares(w, sp, m.types[s], true, tissue == "kidney");
    for (size_t g = 0; g < n; ++g) ambient[g] += share[s] * healthy[s][g];
  }

  m.profiles.resize(m.batches.size() * m.types.size());
  std::vector<double> poisShares;
  for (size_t b = 0; b < m.batches.size(); ++b) {
    // Gene-specific batch factors, log-normal with sd 0.25.
    Rng gr(deriveSeed(w.opt.seed, m.stream, 0x9e9e0ULL + b));
    std::vector<double> batchGene(n);
    for (auto& f : batchGene) f = std::exp(0.25 * gr.normal());
    for (size_t s = 0; s < m.types.size(); ++s) {
      const auto& base = m.batchDiseased[b] ? sick[s] : healthy[s];
      Profile& p = m.profiles[b * m.types.size() + s];
      // Upper library size of this profile (~85th percentile) decides NB vs Poisson.
      const double libRef = kMedianLibrary * m.batchLibrary[b] *
                            cellTypeDefs()[static_cast<size_t>(m.types[s])].size * 1.6;
      poisShares.clear();
      for (size_t v = 0; v < n; ++v) {
        const size_t g = static_cast<size_t>(sp.varOrder[v]);
        const double shareG = ((1.0 - kAmbient) * base[g] + kAmbient * ambient[g]) * batchGene[g];
        if (shareG * libRef >= kPoissonBelow) {
          const double theta = sp.theta[g];
          const double d = theta - 1.0 / 3.0;
          p.nbCol.push_back(static_cast<int32_t>(v));
          p.nbShare.push_back(shareG);
          p.nbD.push_back(d);
          p.nbC.push_back(1.0 / std::sqrt(9.0 * d));
          p.nbTheta.push_back(theta);
        } else {
          p.poisCol.push_back(static_cast<int32_t>(v));
          poisShares.push_back(shareG);
          p.poisShare += shareG;
        }
      }
      p.poisAlias = AliasTable(poisShares);
    }
  }
  return m;
}

// Cells [row0, row0 + n) of dataset m, from the chunk's own random stream.
void makeChunk(const World& w, const DatasetModel& m, int64_t chunk, int64_t row0, int64_t n,
               Chunk& out) {
  Rng rng(deriveSeed(w.opt.seed, m.stream, static_cast<uint64_t>(chunk) + 1));
  const int64_t ncols = static_cast<int64_t>(m.genes->symbols.size());
  out.block.clear(row0, ncols);
  out.typeSlot.resize(static_cast<size_t>(n));
  out.batch.resize(static_cast<size_t>(n));
  std::vector<int32_t> drawn;
  std::vector<int32_t> nbCols;
  std::vector<float> nbVals;
  const double logMedian = std::log(kMedianLibrary);
  for (int64_t i = 0; i < n; ++i) {
    const size_t slot = rng.categorical(m.typeCum);
    const size_t b = rng.categorical(m.batchCum);
    out.typeSlot[static_cast<size_t>(i)] = static_cast<uint8_t>(slot);
    out.batch[static_cast<size_t>(i)] = static_cast<uint8_t>(b);
    const Profile& p = m.profiles[b * m.types.size() + slot];
    const double lib = std::exp(logMedian + kLibrarySdLog * rng.normal()) * m.batchLibrary[b] *
                       cellTypeDefs()[static_cast<size_t>(m.types[slot])].size;
    nbCols.clear();
    nbVals.clear();
    for (size_t k = 0; k < p.nbCol.size(); ++k) {
      const int64_t x = rng.negBinomial(lib * p.nbShare[k], p.nbTheta[k], p.nbD[k], p.nbC[k]);
      if (x > 0) {
        nbCols.push_back(p.nbCol[k]);
        nbVals.push_back(static_cast<float>(x));
      }
    }
    // Low genes: independent Poissons = a Poisson total spread multinomially.
    drawn.clear();
    if (!p.poisAlias.empty()) {
      const int64_t total = rng.poisson(lib * p.poisShare);
      for (int64_t k = 0; k < total; ++k) drawn.push_back(p.poisCol[p.poisAlias.sample(rng)]);
      std::sort(drawn.begin(), drawn.end());
    }
    // Merge the two sorted, disjoint column lists.
    size_t a = 0, d = 0;
    auto& idx = out.block.indices;
    auto& val = out.block.values;
    while (a < nbCols.size() || d < drawn.size()) {
      if (d >= drawn.size() || (a < nbCols.size() && nbCols[a] < drawn[d])) {
        idx.push_back(nbCols[a]);
        val.push_back(nbVals[a]);
        ++a;
      } else {
        const int32_t col = drawn[d];
        size_t e = d;
        while (e < drawn.size() && drawn[e] == col) ++e;
        idx.push_back(col);
        val.push_back(static_cast<float>(e - d));
        d = e;
      }
    }
    out.block.indptr.push_back(static_cast<int64_t>(idx.size()));
  }
}

// Runs make(k, out) for k in [0, n) on `threads` workers and hands results to consume(k, out)
// on this thread in order of k; at most `threads` finished results wait in memory.
template <class T, class Make, class Consume>
void orderedParallel(int64_t n, int threads, Make make, Consume consume) {
  if (threads <= 1 || n <= 1) {
    T t;
    for (int64_t k = 0; k < n; ++k) {
      make(k, t);
      consume(k, t);
    }
    return;
  }
  std::mutex mu;
  std::condition_variable cv;
  std::map<int64_t, T> ready;
  int64_t nextClaim = 0, nextConsume = 0;
  const int64_t maxAhead = threads;
  bool stop = false;
  std::exception_ptr error;
  auto worker = [&] {
    for (;;) {
      int64_t k;
      {
        std::unique_lock<std::mutex> lk(mu);
        cv.wait(lk, [&] { return stop || nextClaim >= n || nextClaim - nextConsume < maxAhead; });
        if (stop || nextClaim >= n) return;
        k = nextClaim++;
      }
      T t;
      try {
        make(k, t);
      } catch (...) {
        std::lock_guard<std::mutex> lk(mu);
        if (!error) error = std::current_exception();
        stop = true;
        cv.notify_all();
        return;
      }
      {
        std::lock_guard<std::mutex> lk(mu);
        ready.emplace(k, std::move(t));
      }
      cv.notify_all();
    }
  };
  std::vector<std::thread> pool;
  struct Joiner {
    std::vector<std::thread>& pool;
    std::mutex& mu;
    std::condition_variable& cv;
    bool& stop;
    ~Joiner() {
      {
        std::lock_guard<std::mutex> lk(mu);
        stop = true;
      }
      cv.notify_all();
      for (auto& th : pool) th.join();
    }
  } joiner{pool, mu, cv, stop};
  for (int i = 0; i < threads; ++i) pool.emplace_back(worker);
  for (int64_t k = 0; k < n; ++k) {
    T t;
    {
      std::unique_lock<std::mutex> lk(mu);
      cv.wait(lk, [&] { return error || ready.count(k) > 0; });
      if (ready.count(k) == 0) std::rethrow_exception(error);
      t = std::move(ready[k]);
      ready.erase(k);
      nextConsume = k + 1;
    }
    cv.notify_all();
    consume(k, t);
  }
}

// 16-base barcode from a 32-bit bijective scramble of the cell index, so names are unique.
std::string barcode(uint32_t i, size_t batch) {
  uint32_t x = (i + 0x5BD1E995u) * 0x9E3779B1u;
  x ^= x >> 16;
  x *= 0x85EBCA6Bu;
  x ^= x >> 13;
  static const char bases[] = "ACGT";
  std::string s(16, 'A');
  for (int k = 0; k < 16; ++k) s[static_cast<size_t>(k)] = bases[(x >> (2 * k)) & 3u];
  return s + "-" + std::to_string(batch + 1);
}

// Categorical column whose categories are the labels used, sorted.
Column categorical(const std::string& name, const std::vector<std::string>& labels,
                   const std::vector<int32_t>& codes) {
  std::vector<uint8_t> used(labels.size(), 0);
  for (int32_t c : codes) used[static_cast<size_t>(c)] = 1;
  std::vector<std::string> cats;
  for (size_t i = 0; i < labels.size(); ++i)
    if (used[i]) cats.push_back(labels[i]);
  std::sort(cats.begin(), cats.end());
  cats.erase(std::unique(cats.begin(), cats.end()), cats.end());
  std::vector<int32_t> remap(labels.size(), -1);
  for (size_t i = 0; i < labels.size(); ++i)
    if (used[i])
      remap[i] = static_cast<int32_t>(std::lower_bound(cats.begin(), cats.end(), labels[i]) - cats.begin());
  Column col;
  col.name = name;
  col.kind = ColumnKind::Categorical;
  col.categories = std::move(cats);
  col.codes.resize(codes.size());
  for (size_t i = 0; i < codes.size(); ++i) col.codes[i] = remap[static_cast<size_t>(codes[i])];
  return col;
}

SynthDatasetInfo writeOne(const World& w, const DatasetModel& m, const std::string& path,
                          const SynthProgress& progress) {
  const SpeciesGenes& sp = *m.genes;
  const int64_t ncols = static_cast<int64_t>(sp.symbols.size());
  const int64_t chunkCells = w.opt.chunkCells;
  const int64_t nChunks = (m.cells + chunkCells - 1) / chunkCells;
  H5adWriter writer(path, ncols);
  std::vector<uint8_t> typeSlot, batch;
  typeSlot.reserve(static_cast<size_t>(m.cells));
  batch.reserve(static_cast<size_t>(m.cells));
  int64_t nnz = 0;
  orderedParallel<Chunk>(
      nChunks, w.opt.threads,
      [&](int64_t k, Chunk& c) {
        const int64_t row0 = k * chunkCells;
        makeChunk(w, m, k, row0, std::min(chunkCells, m.cells - row0), c);
      },
      [&](int64_t, Chunk& c) {
        writer.appendRows(c.block);
        nnz += c.block.nnz();
        typeSlot.insert(typeSlot.end(), c.typeSlot.begin(), c.typeSlot.end());
        batch.insert(batch.end(), c.batch.begin(), c.batch.end());
        if (progress) progress(m.name, static_cast<int64_t>(typeSlot.size()), m.cells);
      });

  DataFrame obs;
  obs.index.reserve(static_cast<size_t>(m.cells));
  for (size_t i = 0; i < typeSlot.size(); ++i) obs.index.push_back(barcode(static_cast<uint32_t>(i), batch[i]));
  {
    std::vector<std::string> typeNames, coarse;
    for (int t : m.types) {
      typeNames.push_back(cellTypeDefs()[static_cast<size_t>(t)].name);
      coarse.push_back(coarseNames()[static_cast<size_t>(cellTypeDefs()[static_cast<size_t>(t)].coarse)]);
    }
    std::vector<int32_t> codes(typeSlot.begin(), typeSlot.end());
    obs.columns.push_back(categorical("cell_type", typeNames, codes));
    obs.columns.push_back(categorical("coarse_cell_type", coarse, codes));
    std::vector<int32_t> zeros(typeSlot.size(), 0);
    obs.columns.push_back(categorical("tissue", {m.tissue}, zeros));
    obs.columns.push_back(categorical("species", {m.species}, zeros));
    std::vector<int32_t> bcodes(batch.begin(), batch.end());
    obs.columns.push_back(categorical("batch", m.batches, bcodes));
    std::vector<std::string> diseaseOfBatch;
    for (size_t b = 0; b < m.batches.size(); ++b)
      diseaseOfBatch.push_back(m.batchDiseased[b] ? m.disease : "normal");
    obs.columns.push_back(categorical("disease", diseaseOfBatch, bcodes));
  }
  std::vector<uint8_t>().swap(typeSlot);
  writer.setObs(obs);

  DataFrame var;
  std::vector<std::string> ids;
  for (int32_t g : sp.varOrder) {
    var.index.push_back(sp.symbols[static_cast<size_t>(g)]);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%011d", 100000 + 7 * sp.geneConcept[static_cast<size_t>(g)]);
    ids.push_back(sp.idPrefix + buf);
  }
  var.columns.push_back(Column::makeStrings("gene_ids", std::move(ids)));
  writer.setVar(var);

  writer.setUns("synth/generator", UnsValue::str("uce synth"));
  writer.setUns("synth/version", UnsValue::str(UCE_VERSION));
  writer.setUns("synth/seed", UnsValue::integer(static_cast<int64_t>(w.opt.seed)));
  writer.setUns("synth/dataset", UnsValue::str(m.name));
  writer.setUns("synth/cells_total", UnsValue::integer(w.opt.cells));
  writer.setUns("synth/genes_per_species", UnsValue::integer(w.opt.genesPerSpecies));
  writer.setUns("synth/baseline_spread", UnsValue::real(w.sigma));
  // The rest of what shaped the world, so a file says how to make it again.
  writer.setUns("synth/type_genes", UnsValue::integer(w.opt.typeGenes));
  writer.setUns("synth/zero_fraction", UnsValue::real(w.opt.zeroFraction));
  writer.setUns("synth/token_dim", UnsValue::integer(w.opt.tokenDim));
  writer.commit();

  SynthDatasetInfo info;
  info.name = m.name;
  info.path = path;
  info.species = m.species;
  info.tissue = m.tissue;
  info.cells = m.cells;
  info.genes = ncols;
  info.nnz = nnz;
  return info;
}

}  // namespace

std::vector<SynthDatasetInfo> writeWorldDatasets(const World& w, const std::string& outDir,
                                                 const SynthProgress& progress) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(outDir, ec);
  if (ec || !fs::is_directory(outDir))
    fail(ErrorKind::Io, outDir, "cannot create the output folder (" + ec.message() + ")");
  const auto selected = selectedDatasets(w.opt);
  const int64_t nd = static_cast<int64_t>(selected.size());
  std::vector<SynthDatasetInfo> out;
  for (int64_t d = 0; d < nd; ++d) {
    const int64_t cells = w.opt.cells / nd + (d < w.opt.cells % nd ? 1 : 0);
    const auto& [species, tissue] = selected[static_cast<size_t>(d)];
    DatasetModel m = buildModel(w, species, tissue, cells);
    out.push_back(writeOne(w, m, (fs::path(outDir) / (m.name + ".h5ad")).string(), progress));
  }
  return out;
}

}  // namespace uce::synth
