// The synthetic world: cell-type and tissue tables, gene selection for human and mouse, gene
// programs, calibration of sparsity, and the contents of the asset bundle.
#include "uce/core/text.h"
#include "uce/core/synth.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "synth_random.h"
#include "synth_world.h"
#include "uce/core/error.h"

namespace uce {
namespace synth {

const std::vector<const char*>& coarseNames() {
  static const std::vector<const char*> names = {"immune", "epithelial", "endothelial",
                                                 "stromal", "muscle"};
  return names;
}

const std::vector<std::vector<const char*>>& coarseMarkers() {
  static const std::vector<std::vector<const char*>> markers = {
      {"CORO1A", "LCP1", "LAPTM5", "CD53", "CD52", "ARHGDIB", "CD37"},
      {"EPCAM", "KRT8", "KRT18", "CDH1", "CLDN4"},
      {"PECAM1", "CDH5", "CLDN5", "KDR", "TIE1"},
      {"COL1A2", "COL6A2", "SPARC", "PDGFRB", "VIM", "DCN", "COL1A1"},
      {"TTN", "MB", "CKM"}};
  return markers;
}

const std::vector<CellTypeDef>& cellTypeDefs() {
  enum { Immune, Epithelial, Endothelial, Stromal, Muscle };
  static const std::vector<CellTypeDef> defs = {
      {"T cell", Immune, 0.6, {"CD3E", "CD3D", "CD2", "IL7R"}},
      {"B cell", Immune, 0.6, {"MS4A1", "CD79A", "CD79B", "CD19"}},
      {"natural killer cell", Immune, 0.6, {"NKG7", "GNLY", "KLRD1", "PRF1"}},
      {"macrophage", Immune, 1.2, {"CD68", "C1QA", "C1QB", "C1QC", "MRC1"}},
      {"classical monocyte", Immune, 0.9, {"CD14", "FCN1", "S100A8", "S100A9", "VCAN"}},
      {"dendritic cell", Immune, 0.9, {"FCER1A", "CD1C", "CLEC10A", "CLEC9A"}},
      {"kidney proximal tubule cell", Epithelial, 1.3, {"LRP2", "CUBN", "SLC34A1", "ALDOB"}},
      {"kidney loop of Henle epithelial cell", Epithelial, 1.1, {"UMOD", "SLC12A1"}},
      {"kidney collecting duct principal cell", Epithelial, 1.0, {"AQP2", "AQP3", "GATA3"}},
      {"podocyte", Epithelial, 1.1, {"NPHS1", "NPHS2", "PODXL", "WT1"}},
      {"type I pneumocyte", Epithelial, 1.0, {"AGER", "RTKN2", "CLIC5"}},
      {"type II pneumocyte", Epithelial, 1.1, {"SFTPC", "SFTPB", "SFTPA1", "NAPSA"}},
      {"club cell", Epithelial, 1.0, {"SCGB1A1", "SCGB3A2"}},
      {"ciliated cell", Epithelial, 1.1, {"FOXJ1", "CAPS", "TPPP3", "DNAH5"}},
      {"endothelial cell", Endothelial, 1.0, {"VWF", "ACKR1", "PLVAP"}},
      {"endothelial cell of lymphatic vessel", Endothelial, 0.9, {"PROX1", "LYVE1", "CCL21", "TFF3"}},
      {"glomerular endothelial cell", Endothelial, 1.0, {"EHD3", "EMCN"}},
      {"fibroblast", Stromal, 1.0, {"LUM", "PDGFRA", "FBLN1", "COL3A1"}},
      {"pericyte", Stromal, 0.9, {"RGS5", "KCNJ8", "NOTCH3"}},
      {"smooth muscle cell", Stromal, 1.0, {"ACTA2", "MYH11", "CNN1", "DES", "TAGLN"}},
      {"Norn cell", Stromal, 0.9, {"DCN", "LPAR1", "COL1A1", "CXCL12", "CFH", "CXCL14", "EPO"}},
      {"cardiac muscle cell", Muscle, 1.8, {"TNNT2", "MYH7", "MYH6", "ACTC1", "NPPA", "MYL2"}},
  };
  return defs;
}

const char* nornTypeName() { return "Norn cell"; }

const std::vector<TissueDef>& tissueDefs() {
  static const std::vector<TissueDef> defs = {
      {"kidney", "chronic kidney disease", 0.05,
       {{"kidney proximal tubule cell", 28}, {"kidney loop of Henle epithelial cell", 10},
        {"kidney collecting duct principal cell", 8}, {"podocyte", 3},
        {"glomerular endothelial cell", 4}, {"endothelial cell", 7}, {"T cell", 6},
        {"B cell", 2}, {"natural killer cell", 2}, {"macrophage", 6},
        {"classical monocyte", 3}, {"dendritic cell", 1}, {"fibroblast", 7}, {"pericyte", 3},
        {"smooth muscle cell", 2}}},
      {"lung", "pulmonary fibrosis", 0.005,
       {{"type I pneumocyte", 8}, {"type II pneumocyte", 14}, {"club cell", 4},
        {"ciliated cell", 5}, {"endothelial cell", 13},
        {"endothelial cell of lymphatic vessel", 2}, {"T cell", 10}, {"B cell", 4},
        {"natural killer cell", 5}, {"macrophage", 15}, {"classical monocyte", 6},
        {"dendritic cell", 2}, {"fibroblast", 7}, {"pericyte", 2}, {"smooth muscle cell", 3}}},
      {"heart", "heart failure", 0.005,
       {{"cardiac muscle cell", 30}, {"endothelial cell", 18},
        {"endothelial cell of lymphatic vessel", 2}, {"fibroblast", 20}, {"pericyte", 8},
        {"smooth muscle cell", 5}, {"macrophage", 8}, {"T cell", 4}, {"classical monocyte", 2},
        {"B cell", 1}, {"natural killer cell", 1}, {"dendritic cell", 1}}},
  };
  return defs;
}

int cellTypeIndex(const std::string& name) {
  const auto& defs = cellTypeDefs();
  for (size_t i = 0; i < defs.size(); ++i)
    if (name == defs[i].name) return static_cast<int>(i);
  return -1;
}

std::vector<std::pair<std::string, std::string>> selectedDatasets(const SynthOptions& opt) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const char* sp : {"human", "mouse"}) {
    if (!opt.species.empty() &&
        std::find(opt.species.begin(), opt.species.end(), sp) == opt.species.end())
      continue;
    for (const auto& t : tissueDefs()) {
      if (!opt.tissues.empty() &&
          std::find(opt.tissues.begin(), opt.tissues.end(), t.name) == opt.tissues.end())
        continue;
      out.emplace_back(sp, t.name);
    }
  }
  return out;
}

double expectedZeroFraction(const World& w, double sigma) {
  const SpeciesGenes& human = w.species[0];
  const size_t n = human.symbols.size();
  // Quantiles of the library-size distribution at z = -1.28, -0.52, 0, 0.52, 1.28.
  static const double zq[] = {-1.2816, -0.5244, 0.0, 0.5244, 1.2816};
  std::vector<double> lp(n);
  double zeros = 0, total = 0;
  for (size_t t = 0; t < cellTypeDefs().size(); ++t) {
    double mx = -1e300;
    for (size_t g = 0; g < n; ++g) {
      lp[g] = w.logMean(human.geneConcept[g], t, sigma);
      mx = std::max(mx, lp[g]);
    }
    double sum = 0;
    for (size_t g = 0; g < n; ++g) sum += (lp[g] = std::exp(lp[g] - mx));
    for (double z : zq) {
      const double lib = kMedianLibrary * cellTypeDefs()[t].size * std::exp(kLibrarySdLog * z);
      for (size_t g = 0; g < n; ++g) {
        const double mu = lib * lp[g] / sum;
        const double th = human.theta[g];
        zeros += mu < kPoissonBelow ? std::exp(-mu) : std::exp(-th * std::log1p(mu / th));
        total += 1;
      }
    }
  }
  return zeros / total;
}

}  // namespace synth

namespace {

using namespace synth;

struct HumanGene {
  std::string symbol, chrom;
  int64_t start;
};

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  std::string out = s.substr(a, b - a);
  if (out.size() >= 2 && out.front() == '"' && out.back() == '"') out = out.substr(1, out.size() - 2);
  return out;
}

std::vector<std::string> splitCsv(const std::string& line) {
  std::vector<std::string> out = csvSplit(line);
  for (auto& f : out) f = trim(f);
  return out;
}

std::string upper(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

std::string titleCase(const std::string& s) {
  std::string out = s;
  bool first = true;
  for (auto& ch : out) {
    const auto u = static_cast<unsigned char>(ch);
    if (std::isalpha(u)) {
      ch = static_cast<char>(first ? std::toupper(u) : std::tolower(u));
      first = false;
    }
  }
  return out;
}

// Human rows of the gene-position CSV, in file order, upper-cased symbols unique.
std::vector<HumanGene> readGenePositions(const std::string& path) {
  if (path.empty())
    fail(ErrorKind::InvalidArgument, "",
         "no gene-position CSV given (--gene-positions FILE with columns "
         "species,gene_symbol,chromosome,start)");
  std::ifstream in(path);
  if (!in) fail(ErrorKind::Io, path, "cannot open the gene-position CSV");
  std::string line;
  if (!std::getline(in, line)) fail(ErrorKind::Format, path, "gene-position CSV is empty");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  const auto header = splitCsv(line);
  auto column = [&](const char* name, bool required) {
    for (size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return static_cast<int>(i);
    if (required)
      fail(ErrorKind::Format, path,
           std::string("gene-position CSV has no column '") + name +
               "' (needs species,gene_symbol,chromosome,start)");
    return -1;
  };
  const int cSpecies = column("species", false), cSymbol = column("gene_symbol", true),
            cChrom = column("chromosome", true), cStart = column("start", true);
  const int need = std::max({cSpecies, cSymbol, cChrom, cStart});
  std::vector<HumanGene> genes;
  std::unordered_set<std::string> seen;
  int64_t lineNo = 1;
  while (std::getline(in, line)) {
    ++lineNo;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (trim(line).empty()) continue;
    const auto f = splitCsv(line);
    if (static_cast<int>(f.size()) <= need)
      fail(ErrorKind::Format, path,
           "line " + std::to_string(lineNo) + " has " + std::to_string(f.size()) +
               " fields, fewer than the header");
    if (cSpecies >= 0 && f[static_cast<size_t>(cSpecies)] != "human") continue;
    HumanGene g;
    g.symbol = f[static_cast<size_t>(cSymbol)];
    g.chrom = f[static_cast<size_t>(cChrom)];
    if (g.chrom.rfind("chr", 0) == 0) g.chrom = g.chrom.substr(3);
    const std::string& s = f[static_cast<size_t>(cStart)];
    char* end = nullptr;
    g.start = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || g.start < 0)
      fail(ErrorKind::Format, path,
           "line " + std::to_string(lineNo) + ": start '" + s + "' is not a non-negative integer");
    if (g.symbol.empty() || g.chrom.empty()) continue;
    if (!seen.insert(upper(g.symbol)).second) continue;  // duplicate symbol: keep the first
    genes.push_back(std::move(g));
  }
  if (genes.empty()) fail(ErrorKind::Format, path, "gene-position CSV has no human rows");
  return genes;
}

// Sort rank of a chromosome name: 1..22 by number, then X, Y, M/MT, then others by name.
std::pair<int, std::string> chromRank(const std::string& c) {
  char* end = nullptr;
  long v = std::strtol(c.c_str(), &end, 10);
  if (!c.empty() && *end == '\0') return {static_cast<int>(v), ""};
  if (c == "X") return {1000, ""};
  if (c == "Y") return {1001, ""};
  if (c == "M" || c == "MT") return {1002, ""};
  return {2000, c};
}

// Mouse position of a human gene: human chromosomes are cut into 40 Mb segments, each sent to
// a mouse autosome (a fixed stand-in for synteny blocks); X, Y and M stay.
std::pair<std::string, int64_t> mousePosition(const std::string& chrom, int64_t start) {
  if (chrom == "X" || chrom == "Y") return {chrom, start};
  if (chrom == "M" || chrom == "MT") return {"MT", start};
  constexpr int64_t kSegment = 40'000'000;
  const uint64_t seg = static_cast<uint64_t>(start / kSegment);
  const uint64_t h = mix64(hashString(chrom) * 1315423911ULL + seg);
  const std::string mchr = std::to_string(1 + h % 19);
  const int64_t within = start % kSegment;
  return {mchr, 3'000'000 + static_cast<int64_t>((h >> 20) % 3) * kSegment + within * 9 / 10};
}

void validate(const SynthOptions& o) {
  auto bad = [](const std::string& msg) { fail(ErrorKind::InvalidArgument, "", msg); };
  if (o.cells < 1 || o.cells > 2'000'000'000LL) bad("--cells must be between 1 and 2e9");
  if (o.genesPerSpecies < 300) bad("--genes must be at least 300 (the cell-type markers alone need ~150)");
  if (o.tokenDim < 4 || o.tokenDim > 16384) bad("--token-dim must be between 4 and 16384");
  if (o.chunkCells < 1 || o.chunkCells > 1'000'000) bad("--chunk-cells must be between 1 and 1000000");
  if (o.threads < 1 || o.threads > 256) bad("threads must be between 1 and 256");
  if (!(o.zeroFraction > 0.3 && o.zeroFraction < 0.995)) bad("zero fraction must be in (0.3, 0.995)");
  if (o.typeGenes < 0 || o.typeGenes > o.genesPerSpecies / 4)
    bad("--type-genes must be between 0 and a quarter of --genes");
  for (const auto& s : o.species)
    if (s != "human" && s != "mouse") bad("unknown species '" + s + "' (choose human, mouse)");
  for (const auto& t : o.tissues) {
    bool ok = false;
    for (const auto& d : tissueDefs()) ok = ok || t == d.name;
    if (!ok) bad("unknown tissue '" + t + "' (choose kidney, lung, heart)");
  }
  const int64_t nd = static_cast<int64_t>(selectedDatasets(o).size());
  if (nd == 0) bad("the species/tissue selection leaves no dataset to write");
  if (o.cells < nd)
    bad("--cells " + std::to_string(o.cells) + " is fewer than the " + std::to_string(nd) +
        " datasets to write");
}

// Picks k distinct items of [0, n) not in `exclude`, in random order.
std::vector<int32_t> sampleDistinct(Rng& rng, int32_t n, size_t k, const std::vector<uint8_t>& exclude) {
  std::vector<int32_t> pool;
  pool.reserve(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i)
    if (exclude.empty() || !exclude[static_cast<size_t>(i)]) pool.push_back(i);
  k = std::min(k, pool.size());
  for (size_t i = 0; i < k; ++i) {
    const size_t j = i + static_cast<size_t>(rng.below(pool.size() - i));
    std::swap(pool[i], pool[j]);
  }
  pool.resize(k);
  return pool;
}

std::unique_ptr<World> buildWorld(SynthOptions opt) {
  validate(opt);
  auto w = std::make_unique<World>();
  w->opt = std::move(opt);
  const SynthOptions& o = w->opt;
  const auto csv = readGenePositions(o.genePositionsCsv);
  const int64_t G = o.genesPerSpecies;
  if (G > static_cast<int64_t>(csv.size()))
    fail(ErrorKind::InvalidArgument, o.genePositionsCsv,
         "--genes " + std::to_string(G) + " is more than the " + std::to_string(csv.size()) +
             " human genes in the gene-position CSV");

  std::unordered_map<std::string, size_t> csvIndex;
  for (size_t i = 0; i < csv.size(); ++i) csvIndex.emplace(upper(csv[i].symbol), i);

  // --- Human genes: named markers, housekeeping genes, then a random sample, in CSV order.
  Rng geneRng(deriveSeed(o.seed, hashString("genes")));
  std::vector<uint8_t> chosen(csv.size(), 0), named(csv.size(), 0), housekeeping(csv.size(), 0);
  auto force = [&](const char* sym, std::vector<uint8_t>& flag) {
    auto it = csvIndex.find(sym);
    if (it == csvIndex.end()) return;
    chosen[it->second] = 1;
    flag[it->second] = 1;
  };
  for (const auto& list : coarseMarkers())
    for (const char* s : list) force(s, named);
  for (const auto& t : cellTypeDefs())
    for (const char* s : t.markers) force(s, named);
  {
    std::vector<size_t> hk;
    for (size_t i = 0; i < csv.size(); ++i) {
      const std::string& s = csv[i].symbol;
      const bool ribo = s.size() >= 4 && (s.rfind("RPL", 0) == 0 || s.rfind("RPS", 0) == 0) &&
                        std::isdigit(static_cast<unsigned char>(s[3]));
      static const std::set<std::string> extra = {"ACTB", "GAPDH", "EEF1A1", "TPT1", "FTL",
                                                  "FTH1", "TMSB4X", "MALAT1", "B2M", "MT-CO1"};
      if ((ribo || extra.count(s)) && !named[i]) hk.push_back(i);
    }
    const size_t nHk = std::min(hk.size(), static_cast<size_t>(G / 20));
    for (size_t j = 0; j < nHk; ++j) {
      const size_t pick = j + static_cast<size_t>(geneRng.below(hk.size() - j));
      std::swap(hk[j], hk[pick]);
      chosen[hk[j]] = 1;
      housekeeping[hk[j]] = 1;
    }
  }
  int64_t nChosen = std::count(chosen.begin(), chosen.end(), 1);
  if (nChosen > G)
    fail(ErrorKind::InvalidArgument, "",
         "--genes " + std::to_string(G) + " is fewer than the " + std::to_string(nChosen) +
             " marker and housekeeping genes; ask for more genes");
  for (int32_t i : sampleDistinct(geneRng, static_cast<int32_t>(csv.size()),
                                  static_cast<size_t>(G - nChosen), chosen))
    chosen[static_cast<size_t>(i)] = 1;

  SpeciesGenes human;
  human.name = "human";
  human.fileStem = "Homo_sapiens.GRCh38";
  human.idPrefix = "ENSG";
  std::vector<size_t> humanCsvRow;
  for (size_t i = 0; i < csv.size(); ++i) {
    if (!chosen[i]) continue;
    human.symbols.push_back(csv[i].symbol);
    human.chrom.push_back(csv[i].chrom);
    human.start.push_back(csv[i].start);
    human.geneConcept.push_back(static_cast<int32_t>(humanCsvRow.size()));
    humanCsvRow.push_back(i);
  }
  const int32_t nHuman = static_cast<int32_t>(human.symbols.size());

  // --- Concept baselines.
  const int32_t nHomolog = static_cast<int32_t>(std::min<int64_t>(nHuman, std::llround(0.85 * static_cast<double>(G))));
  const int32_t nMouseOnly = static_cast<int32_t>(G - nHomolog);
  w->nConcepts = nHuman + nMouseOnly;
  const size_t NC = static_cast<size_t>(w->nConcepts);
  Rng progRng(deriveSeed(o.seed, hashString("programs")));
  w->baseZ.resize(NC);
  w->housekeeping.assign(NC, 0);
  w->hkJitter.assign(NC, 0.0);
  std::vector<uint8_t> notRandom(NC, 0);  // named markers and housekeeping genes
  for (size_t c = 0; c < NC; ++c) w->baseZ[c] = std::clamp(progRng.normal(), -3.0, 2.5);
  for (int32_t g = 0; g < nHuman; ++g) {
    const size_t row = humanCsvRow[static_cast<size_t>(g)], c = static_cast<size_t>(g);
    if (named[row]) {
      // Low everywhere except where a program lifts it.
      w->baseZ[c] = -0.5 + 0.3 * progRng.normal();
      notRandom[c] = 1;
    } else if (housekeeping[row]) {
      w->housekeeping[c] = 1;
      w->hkJitter[c] = 0.3 + progRng.uniform();
      notRandom[c] = 1;
    }
  }
  std::unordered_map<std::string, int32_t> conceptOf;  // upper human symbol -> concept
  for (int32_t g = 0; g < nHuman; ++g) conceptOf.emplace(upper(human.symbols[static_cast<size_t>(g)]), g);

  // --- Programs: coarse (named + random genes) and fine (named markers + random genes).
  const auto& types = cellTypeDefs();
  std::vector<Program> coarseProg(coarseNames().size()), coarseNamed(coarseNames().size());
  const size_t nCoarseRandom = std::max<size_t>(8, NC / 100), nFineRandom = std::max<size_t>(6, NC / 200);
  for (size_t k = 0; k < coarseProg.size(); ++k) {
    for (const char* s : coarseMarkers()[k]) {
      auto it = conceptOf.find(s);
      if (it != conceptOf.end()) coarseNamed[k].emplace_back(it->second, 1.6 + 0.4 * progRng.uniform());
    }
    for (int32_t c : sampleDistinct(progRng, w->nConcepts, nCoarseRandom, notRandom))
      coarseProg[k].emplace_back(c, 0.8 + 0.6 * progRng.uniform());
  }
  w->typeFold.assign(types.size(), std::vector<double>(NC, 0.0));
  w->markerLevel.assign(types.size(), std::vector<double>(NC, 0.0));
  for (size_t t = 0; t < types.size(); ++t) {
    const size_t k = static_cast<size_t>(types[t].coarse);
    for (const auto& [c, f] : coarseProg[k]) w->typeFold[t][static_cast<size_t>(c)] += f;
    for (const auto& [c, level] : coarseNamed[k]) w->markerLevel[t][static_cast<size_t>(c)] = level;
    for (const char* s : types[t].markers) {
      auto it = conceptOf.find(s);
      if (it == conceptOf.end()) continue;
      double& level = w->markerLevel[t][static_cast<size_t>(it->second)];
      level = std::max(level, 2.1 + 0.4 * progRng.uniform());
    }
    for (int32_t c : sampleDistinct(progRng, w->nConcepts, nFineRandom, notRandom))
      w->typeFold[t][static_cast<size_t>(c)] += 1.0 + 0.8 * progRng.uniform();
  }
  for (int32_t c : sampleDistinct(progRng, w->nConcepts, 30, notRandom))
    w->diseaseProgram.emplace_back(c, 1.0);
  if (o.typeGenes > 0) {
    // On/off programs (own random stream, so the classic world's draws stay as they were):
    // genes silent by default (z -2.5 to -3) that a coarse or fine type switches on to z 1.6-2.5.
    Rng onRng(deriveSeed(o.seed, hashString("on-off programs")));
    std::vector<uint8_t> used = notRandom;
    for (size_t t = 0; t < types.size(); ++t)
      for (size_t c = 0; c < NC; ++c)
        if (w->typeFold[t][c] != 0.0) used[c] = 1;
    for (const auto& [c, f] : w->diseaseProgram) used[static_cast<size_t>(c)] = 1;
    std::vector<std::vector<int32_t>> onCoarse(coarseNames().size()), onFine(types.size());
    std::vector<uint8_t> isOn(NC, 0);
    for (auto& list : onCoarse) list = sampleDistinct(onRng, w->nConcepts, static_cast<size_t>(o.typeGenes), used);
    for (auto& list : onFine) list = sampleDistinct(onRng, w->nConcepts, static_cast<size_t>(o.typeGenes), used);
    for (const auto* lists : {&onCoarse, &onFine})
      for (const auto& list : *lists)
        for (int32_t c : list) isOn[static_cast<size_t>(c)] = 1;
    for (size_t c = 0; c < NC; ++c)
      if (isOn[c]) w->baseZ[c] = -2.5 - 0.5 * onRng.uniform();
    auto switchOn = [&](size_t t, int32_t c) {
      const double target = 1.6 + 0.9 * onRng.uniform();
      double& f = w->typeFold[t][static_cast<size_t>(c)];
      f = std::max(f, target - w->baseZ[static_cast<size_t>(c)]);
    };
    for (size_t t = 0; t < types.size(); ++t) {
      for (int32_t c : onCoarse[static_cast<size_t>(types[t].coarse)]) switchOn(t, c);
      for (int32_t c : onFine[t]) switchOn(t, c);
    }
  }
  if (auto it = conceptOf.find("EPO"); it != conceptOf.end()) w->epoConcept = it->second;

  // --- Mouse genes: homologs of a subset of human genes (all markers and housekeeping genes
  // included) plus mouse-only genes.
  Rng mouseRng(deriveSeed(o.seed, hashString("mouse")));
  std::vector<uint8_t> isHomolog(static_cast<size_t>(nHuman), 0);
  int32_t nForced = 0;
  for (int32_t g = 0; g < nHuman; ++g)
    if (notRandom[static_cast<size_t>(g)]) {
      isHomolog[static_cast<size_t>(g)] = 1;
      ++nForced;
    }
  for (int32_t g : sampleDistinct(mouseRng, nHuman, static_cast<size_t>(std::max(0, nHomolog - nForced)), isHomolog))
    isHomolog[static_cast<size_t>(g)] = 1;

  SpeciesGenes mouse;
  mouse.name = "mouse";
  mouse.fileStem = "Mus_musculus.GRCm39";
  mouse.idPrefix = "ENSMUSG";
  std::unordered_set<std::string> mouseUpper;
  for (int32_t g = 0; g < nHuman; ++g) {
    if (!isHomolog[static_cast<size_t>(g)]) continue;
    mouse.symbols.push_back(titleCase(human.symbols[static_cast<size_t>(g)]));
    mouseUpper.insert(upper(mouse.symbols.back()));
    auto [chr, pos] = mousePosition(human.chrom[static_cast<size_t>(g)], human.start[static_cast<size_t>(g)]);
    mouse.chrom.push_back(chr);
    mouse.start.push_back(pos);
    mouse.geneConcept.push_back(g);
  }
  static const char* rikPrefixes[] = {"1700", "4930", "2310", "9130", "A430", "D630", "4933", "1110"};
  for (int32_t k = 0; k < nMouseOnly; ++k) {
    std::string sym;
    do {
      if (mouseRng.uniform() < 0.6) {
        sym = "Gm" + std::to_string(10000 + mouseRng.below(50000));
      } else {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%s%03d%c%02dRik", rikPrefixes[mouseRng.below(8)],
                      static_cast<int>(mouseRng.below(1000)), static_cast<char>('A' + mouseRng.below(26)),
                      static_cast<int>(mouseRng.below(100)));
        sym = buf;
      }
    } while (conceptOf.count(upper(sym)) || !mouseUpper.insert(upper(sym)).second);
    mouse.symbols.push_back(sym);
    mouse.chrom.push_back(std::to_string(1 + mouseRng.below(19)));
    mouse.start.push_back(3'000'000 + static_cast<int64_t>(mouseRng.below(150'000'000)));
    mouse.geneConcept.push_back(nHuman + k);
  }

  // --- Per-gene divergence and dispersion; var orders.
  for (SpeciesGenes* sp : {&human, &mouse}) {
    Rng r(deriveSeed(o.seed, hashString(sp->name + "/genes")));
    const bool isMouse = sp == &mouse;
    for (size_t g = 0; g < sp->symbols.size(); ++g) {
      const size_t c = static_cast<size_t>(sp->geneConcept[g]);
      const double sd = !isMouse ? 0.0 : (notRandom[c] ? 0.1 : 0.3);
      sp->divergence.push_back(sd * r.normal());
      sp->theta.push_back(std::clamp(std::exp(std::log(4.0) + 0.5 * r.normal()), 1.0, 50.0));
    }
    sp->varOrder.resize(sp->symbols.size());
    for (size_t g = 0; g < sp->varOrder.size(); ++g) sp->varOrder[g] = static_cast<int32_t>(g);
  }
  // Human .h5ad files list genes in genome order (as Cell Ranger does), mouse ones
  // alphabetically: both differ from the token order, as real data does.
  std::sort(human.varOrder.begin(), human.varOrder.end(), [&](int32_t a, int32_t b) {
    auto ra = chromRank(human.chrom[static_cast<size_t>(a)]), rb = chromRank(human.chrom[static_cast<size_t>(b)]);
    if (ra != rb) return ra < rb;
    if (human.start[static_cast<size_t>(a)] != human.start[static_cast<size_t>(b)])
      return human.start[static_cast<size_t>(a)] < human.start[static_cast<size_t>(b)];
    return a < b;
  });
  std::sort(mouse.varOrder.begin(), mouse.varOrder.end(), [&](int32_t a, int32_t b) {
    return mouse.symbols[static_cast<size_t>(a)] < mouse.symbols[static_cast<size_t>(b)];
  });
  w->species.push_back(std::move(human));
  w->species.push_back(std::move(mouse));

  // --- Calibrate the spread of baselines to the target share of zeros (bisection; the share
  // grows with the spread).
  double lo = 1.3, hi = 4.0;
  if (expectedZeroFraction(*w, hi) < o.zeroFraction) {
    w->sigma = hi;
  } else if (expectedZeroFraction(*w, lo) > o.zeroFraction) {
    w->sigma = lo;
  } else {
    for (int it = 0; it < 14; ++it) {
      const double mid = 0.5 * (lo + hi);
      (expectedZeroFraction(*w, mid) < o.zeroFraction ? lo : hi) = mid;
    }
    w->sigma = 0.5 * (lo + hi);
  }

  // --- Asset contents.
  SynthAssets& a = w->assets;
  a.tokenDim = o.tokenDim;
  a.seed = o.seed;
  const size_t D = static_cast<size_t>(o.tokenDim);
  Rng embRng(deriveSeed(o.seed, hashString("protein_embeddings")));
  int64_t offset = 0;
  std::vector<float> humanEmb;
  for (const SpeciesGenes& sp : w->species) {
    SynthSpeciesAssets s;
    s.name = sp.name;
    s.fileStem = sp.fileStem;
    s.offset = offset;
    s.embeddings.resize(sp.symbols.size() * D);
    for (size_t g = 0; g < sp.symbols.size(); ++g) {
      s.tokens.push_back(upper(sp.symbols[g]));
      float* v = &s.embeddings[g * D];
      const size_t c = static_cast<size_t>(sp.geneConcept[g]);
      if (sp.name == "human") {
        for (size_t d = 0; d < D; ++d) v[d] = static_cast<float>(embRng.normal());
      } else if (c < static_cast<size_t>(nHuman)) {
        // Homolog: the human vector plus a random vector of 0.15-0.35 times its length
        // (cosine ~0.94-0.99 whatever the dimension).
        const double eps = 0.15 + 0.2 * embRng.uniform();
        std::vector<double> noise(D);
        double hn = 0, nn = 0;
        for (size_t d = 0; d < D; ++d) {
          noise[d] = embRng.normal();
          nn += noise[d] * noise[d];
          hn += double(humanEmb[c * D + d]) * humanEmb[c * D + d];
        }
        const double scale = eps * std::sqrt(hn / std::max(nn, 1e-30));
        for (size_t d = 0; d < D; ++d)
          v[d] = static_cast<float>(humanEmb[c * D + d] + scale * noise[d]);
      } else {
        for (size_t d = 0; d < D; ++d) v[d] = static_cast<float>(embRng.normal());
      }
      a.chromRows.push_back({sp.name, sp.symbols[g], sp.chrom[g], sp.start[g]});
    }
    if (sp.name == "human") humanEmb = s.embeddings;
    offset += static_cast<int64_t>(s.tokens.size());
    a.species.push_back(std::move(s));
  }
  std::set<std::string> chromNames;
  for (const auto& r : a.chromRows) chromNames.insert(r.species + "_" + r.chromosome);
  a.chromNames.assign(chromNames.begin(), chromNames.end());
  Rng chromRng(deriveSeed(o.seed, hashString("chromosome_tokens")));
  a.chromEmbeddings.resize(a.chromNames.size() * D);
  for (auto& x : a.chromEmbeddings) x = static_cast<float>(chromRng.normal());
  return w;
}

}  // namespace

int64_t SynthAssets::geneTokens() const {
  int64_t n = 0;
  for (const auto& s : species) n += static_cast<int64_t>(s.tokens.size());
  return n;
}

std::string SynthAssets::embeddingFile(const SynthSpeciesAssets& s) const {
  return "protein_embeddings/" + s.fileStem + ".gene_symbol_to_embedding_ESM2.pt";
}

struct SynthAtlas::World : synth::World {};

SynthAtlas::SynthAtlas(SynthOptions options) {
  auto built = buildWorld(std::move(options));
  world_ = std::make_unique<World>();
  static_cast<synth::World&>(*world_) = std::move(*built);
}

SynthAtlas::~SynthAtlas() = default;

const SynthOptions& SynthAtlas::options() const { return world_->opt; }

const SynthAssets& SynthAtlas::assets() const { return world_->assets; }

std::vector<std::string> SynthAtlas::datasetNames() const {
  std::vector<std::string> names;
  for (const auto& [sp, t] : selectedDatasets(world_->opt)) names.push_back(sp + "_" + t);
  return names;
}

std::vector<SynthDatasetInfo> SynthAtlas::writeDatasets(const std::string& outDir,
                                                        const SynthProgress& progress) const {
  return writeWorldDatasets(*world_, outDir, progress);
}

std::vector<std::pair<std::string, std::string>> SynthAtlas::cellTypes() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& t : cellTypeDefs()) out.emplace_back(t.name, coarseNames()[static_cast<size_t>(t.coarse)]);
  return out;
}

}  // namespace uce
