#include "uce/model/assets.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <torch/torch.h>

#include "uce/core/error.h"
#include "uce/core/text.h"
#include "uce/model/torch_file.h"

namespace uce::model {
namespace fs = std::filesystem;

const std::map<std::string, std::string>& releaseEmbeddingFiles() {
  static const std::map<std::string, std::string> files = {
      {"human", "Homo_sapiens.GRCh38.gene_symbol_to_embedding_ESM2.pt"},
      {"mouse", "Mus_musculus.GRCm39.gene_symbol_to_embedding_ESM2.pt"},
      {"frog", "Xenopus_tropicalis.Xenopus_tropicalis_v9.1.gene_symbol_to_embedding_ESM2.pt"},
      {"zebrafish", "Danio_rerio.GRCz11.gene_symbol_to_embedding_ESM2.pt"},
      {"mouse_lemur", "Microcebus_murinus.Mmur_3.0.gene_symbol_to_embedding_ESM2.pt"},
      {"pig", "Sus_scrofa.Sscrofa11.1.gene_symbol_to_embedding_ESM2.pt"},
      {"macaca_fascicularis", "Macaca_fascicularis.Macaca_fascicularis_6.0.gene_symbol_to_embedding_ESM2.pt"},
      {"macaca_mulatta", "Macaca_mulatta.Mmul_10.gene_symbol_to_embedding_ESM2.pt"}};
  return files;
}

namespace {

// Minimal reader for the flat fields of our manifest.json: "key": number / "key": "string".
bool jsonNumber(const std::string& text, const std::string& key, int64_t& out) {
  size_t p = text.find("\"" + key + "\"");
  if (p == std::string::npos) return false;
  p = text.find(':', p);
  if (p == std::string::npos) return false;
  ++p;
  while (p < text.size() && std::isspace(static_cast<unsigned char>(text[p]))) ++p;
  char* end = nullptr;
  long long v = std::strtoll(text.c_str() + p, &end, 10);
  if (end == text.c_str() + p) return false;
  out = v;
  return true;
}

// A whole CSV file: header and records; col() finds a column or fails naming the file.
struct CsvTable {
  std::string path;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<int64_t> lineNo;  // file line of each record
  size_t col(const std::string& name, const std::string& needs) const {
    auto it = std::find(header.begin(), header.end(), name);
    if (it == header.end()) {
      std::string has;
      for (const auto& h : header) has += (has.empty() ? "" : ", ") + h;
      uce::fail(uce::ErrorKind::Format, path, "missing column '" + name + "' (needs " + needs + "; the file has: " + has + ")");
    }
    return static_cast<size_t>(it - header.begin());
  }
  bool has(const std::string& name) const { return std::find(header.begin(), header.end(), name) != header.end(); }
};

CsvTable readCsv(const std::string& path) {
  std::ifstream in(path);
  if (!in) uce::fail(uce::ErrorKind::Io, path, "cannot open the CSV file");
  CsvTable t;
  t.path = path;
  std::string line;
  if (!std::getline(in, line)) uce::fail(uce::ErrorKind::Format, path, "file is empty");
  if (line.size() >= 3 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);  // UTF-8 BOM
  t.header = csvSplit(line);
  int64_t lineNo = 1;
  while (std::getline(in, line)) {
    ++lineNo;
    if (line.empty() || line == "\r") continue;
    auto f = csvSplit(line);
    if (f.size() < t.header.size())
      uce::fail(uce::ErrorKind::Format, path, "line " + std::to_string(lineNo) + " has " + std::to_string(f.size()) +
                                                  " fields, the header " + std::to_string(t.header.size()));
    t.rows.push_back(std::move(f));
    t.lineNo.push_back(lineNo);
  }
  return t;
}

int64_t parseInt(const std::string& text, const std::string& path, int64_t lineNo, const std::string& column) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);  // "1234", "1234.0" and "1e5" as pandas writes them
  if (text.empty() || end == text.c_str() || *end != '\0' || !std::isfinite(v) || v != std::floor(v))
    uce::fail(uce::ErrorKind::Format, path, "line " + std::to_string(lineNo) + ": " + column + " '" + text + "' is not a whole number");
  return static_cast<int64_t>(v);
}

std::string resolve(const std::string& dir, const std::string& p) {
  return fs::path(p).is_absolute() ? p : (fs::path(dir) / p).string();
}

}  // namespace

at::Tensor withChromosomeRows(at::Tensor table, int64_t chromTokenOffset) {
  if (!table.defined() || table.dim() != 2 || table.size(0) != chromTokenOffset) return table;
  torch::manual_seed(23);
  return torch::cat({table.to(torch::kFloat), torch::normal(0, 1, {1895, table.size(1)})}, 0);
}

std::vector<GenePosition> readGenePositions(const std::string& path, const std::string& species) {
  if (!fs::exists(path)) uce::fail(uce::ErrorKind::Io, path, "gene-position CSV not found");
  CsvTable t = readCsv(path);
  const std::string needs = "gene_symbol, chromosome, start";
  const size_t cGene = t.col("gene_symbol", needs), cChrom = t.col("chromosome", needs), cStart = t.col("start", needs);
  const bool bySpecies = t.has("species");
  const size_t cSpecies = bySpecies ? t.col("species", needs) : 0;
  std::vector<GenePosition> out;
  std::set<std::string> others;
  for (size_t i = 0; i < t.rows.size(); ++i) {
    const auto& f = t.rows[i];
    if (bySpecies && f[cSpecies] != species) {
      others.insert(f[cSpecies]);
      continue;
    }
    if (f[cGene].empty() || f[cChrom].empty())
      uce::fail(uce::ErrorKind::Format, path, "line " + std::to_string(t.lineNo[i]) + ": empty gene_symbol or chromosome");
    out.push_back({toUpper(f[cGene]), f[cChrom], parseInt(f[cStart], path, t.lineNo[i], "start")});
  }
  if (out.empty()) {
    std::string has;
    for (const auto& o : others) has += (has.empty() ? "" : ", ") + o;
    uce::fail(uce::ErrorKind::Format, path,
              others.empty() ? std::string("no gene positions in the file")
                             : "no rows for species '" + species + "' (its species column holds: " + has + ")");
  }
  return out;
}

std::vector<std::string> sortedChromosomes(const std::vector<GenePosition>& rows) {
  std::set<std::string> names;
  for (const auto& r : rows) names.insert(r.chromosome);
  return {names.begin(), names.end()};
}

AssetBundle::AssetBundle(std::string dir) : dir_(std::move(dir)) {
  if (!fs::is_directory(dir_)) uce::fail(uce::ErrorKind::Io, dir_, "asset directory not found");
  const std::string offsetsPath = dir_ + "/species_offsets.pkl";
  const std::string chromPath = dir_ + "/species_chrom.csv";
  if (!fs::exists(offsetsPath))
    uce::fail(uce::ErrorKind::Io, offsetsPath, "missing: the asset directory needs species_offsets.pkl");
  if (!fs::exists(chromPath))
    uce::fail(uce::ErrorKind::Io, chromPath, "missing: the asset directory needs species_chrom.csv");
  for (auto& kv : loadStrIntPickle(offsetsPath)) offsets_[kv.first] = kv.second;
  files_ = releaseEmbeddingFiles();

  const std::string manifestPath = dir_ + "/manifest.json";
  if (fs::exists(manifestPath)) {
    std::ifstream in(manifestPath);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    jsonNumber(text, "chrom_token_offset", chromTokenOffset_);
    jsonNumber(text, "token_dim", tokenDim_);
    jsonNumber(text, "nhead", nhead_);
  }
  // Embedding files of species the release does not name: <Anything>.pt files whose name
  // starts with the species (our bundles) are matched by the manifest-free rule below.
  if (fs::is_directory(dir_ + "/protein_embeddings"))
    for (const auto& e : fs::directory_iterator(dir_ + "/protein_embeddings")) {
      const std::string name = e.path().filename().string();
      for (const auto& kv : offsets_) {
        const std::string& sp = kv.first;
        bool releaseNamed = files_.count(sp) && fs::exists(dir_ + "/protein_embeddings/" + files_[sp]);
        if (!releaseNamed && name.rfind(sp + ".", 0) == 0 && name.size() > 3 &&
            name.compare(name.size() - 3, 3, ".pt") == 0)
          files_[sp] = name;
      }
    }

  // species_chrom.csv: codes are the sorted unique "species_chromosome" over all rows.
  std::ifstream in(chromPath);
  std::string line;
  if (!std::getline(in, line)) uce::fail(uce::ErrorKind::Format, chromPath, "file is empty");
  auto header = csvSplit(line);
  auto col = [&](const std::string& name) {
    auto it = std::find(header.begin(), header.end(), name);
    if (it == header.end())
      uce::fail(uce::ErrorKind::Format, chromPath, "missing column '" + name + "' (needs species, gene_symbol, chromosome, start)");
    return static_cast<size_t>(it - header.begin());
  };
  const size_t cSpecies = col("species"), cGene = col("gene_symbol"), cChrom = col("chromosome"), cStart = col("start");
  const size_t need = std::max({cSpecies, cGene, cChrom, cStart});
  struct Row { std::string species, gene, specChrom; int64_t start; };
  std::vector<Row> rows;
  std::set<std::string> specChroms;
  int64_t lineNo = 1;
  while (std::getline(in, line)) {
    ++lineNo;
    if (line.empty() || line == "\r") continue;
    auto f = csvSplit(line);
    if (f.size() <= need)
      uce::fail(uce::ErrorKind::Format, chromPath, "line " + std::to_string(lineNo) + " has too few fields");
    Row r;
    r.species = f[cSpecies];
    r.gene = toUpper(f[cGene]);
    r.specChrom = f[cSpecies] + "_" + f[cChrom];
    char* end = nullptr;
    double start = std::strtod(f[cStart].c_str(), &end);
    r.start = (end == f[cStart].c_str()) ? 0 : static_cast<int64_t>(start);  // missing start sorts first
    specChroms.insert(r.specChrom);
    rows.push_back(std::move(r));
  }
  std::map<std::string, int32_t> code;
  for (const auto& s : specChroms) code.emplace(s, static_cast<int32_t>(code.size()));
  nChromCodes_ = static_cast<int64_t>(code.size());
  for (const auto& r : rows) chrom_[r.species].emplace(r.gene, std::make_pair(code[r.specChrom], r.start));

  // Species added after the release: their own embedding file, positions and chromosome rows.
  const std::string addedPath = dir_ + "/new_species.csv";
  if (fs::exists(addedPath)) {
    CsvTable t = readCsv(addedPath);
    const std::string needs = "species, path, chrom_file, offset, chrom_token_offset, n_chrom_tokens";
    const size_t cName = t.col("species", needs), cPath = t.col("path", needs), cChromFile = t.col("chrom_file", needs),
                 cOffset = t.col("offset", needs), cChromOffset = t.col("chrom_token_offset", needs),
                 cN = t.col("n_chrom_tokens", needs);
    const bool hasSeed = t.has("seed"), hasSha = t.has("source_sha256");
    for (size_t i = 0; i < t.rows.size(); ++i) {
      const auto& f = t.rows[i];
      AddedSpecies a;
      a.name = f[cName];
      a.embeddingFile = f[cPath];
      a.chromFile = f[cChromFile];
      a.offset = parseInt(f[cOffset], addedPath, t.lineNo[i], "offset");
      a.chromTokenOffset = parseInt(f[cChromOffset], addedPath, t.lineNo[i], "chrom_token_offset");
      a.chromTokens = parseInt(f[cN], addedPath, t.lineNo[i], "n_chrom_tokens");
      if (hasSeed) a.seed = static_cast<uint64_t>(std::strtoull(f[t.col("seed", needs)].c_str(), nullptr, 10));
      if (hasSha) a.sourceSha256 = f[t.col("source_sha256", needs)];
      auto off = offsets_.find(a.name);
      if (off == offsets_.end() || off->second != a.offset)
        uce::fail(uce::ErrorKind::Format, addedPath,
                  "species '" + a.name + "' has offset " + std::to_string(a.offset) +
                      " here but species_offsets.pkl " + (off == offsets_.end() ? std::string("lacks it") : "says " + std::to_string(off->second)) +
                      ": the bundle is inconsistent; extend the original bundle again");
      added_.push_back(std::move(a));
    }
  }
}

std::vector<std::string> AssetBundle::speciesNames() const {
  std::vector<std::string> out;
  for (const auto& kv : offsets_) out.push_back(kv.first);
  return out;
}

const SpeciesTokens& AssetBundle::species(const std::string& name) {
  auto it = loaded_.find(name);
  if (it != loaded_.end()) return *it->second;
  if (!offsets_.count(name)) {
    std::string known;
    for (const auto& kv : offsets_) known += (known.empty() ? "" : ", ") + kv.first;
    uce::fail(uce::ErrorKind::InvalidArgument, dir_,
              "unknown species '" + name + "'; this asset directory has: " + known +
                  ". For another species give its protein embeddings and gene positions "
                  "(uce embed --new-species-embeddings FILE.pt --new-species-positions FILE.csv, or uce add-species)");
  }
  auto added = std::find_if(added_.begin(), added_.end(), [&](const AddedSpecies& a) { return a.name == name; });
  if (added != added_.end()) return loadAdded(*added);
  if (!files_.count(name))
    uce::fail(uce::ErrorKind::Io, dir_, "no protein-embedding file for species '" + name + "' in protein_embeddings/");
  auto sp = std::make_unique<SpeciesTokens>();
  sp->name = name;
  sp->offset = offsets_[name];
  sp->embeddingFile = dir_ + "/protein_embeddings/" + files_[name];
  if (!fs::exists(sp->embeddingFile))
    uce::fail(uce::ErrorKind::Io, sp->embeddingFile, "missing protein-embedding file for species '" + name + "'");
  NamedTensors emb = loadTensorDict(sp->embeddingFile);
  sp->genes.reserve(emb.size());
  for (auto& kv : emb) {
    std::string g = toUpper(kv.first);
    sp->index.emplace(g, static_cast<int32_t>(sp->genes.size()));
    sp->genes.push_back(std::move(g));
  }
  auto c = chrom_.find(name);
  if (c != chrom_.end()) sp->chromPos = c->second;
  sp->chromTokenOffset = chromTokenOffset_;
  return *loaded_.emplace(name, std::move(sp)).first->second;
}

const SpeciesTokens& AssetBundle::loadAdded(const AddedSpecies& a) {
  auto sp = std::make_unique<SpeciesTokens>();
  sp->name = a.name;
  sp->offset = a.offset;
  sp->embeddingFile = resolve(dir_, a.embeddingFile);
  if (!fs::exists(sp->embeddingFile))
    uce::fail(uce::ErrorKind::Io, sp->embeddingFile, "missing protein-embedding file for species '" + a.name + "'");
  for (auto& kv : loadTensorDict(sp->embeddingFile)) {
    std::string g = toUpper(kv.first);
    sp->index.emplace(g, static_cast<int32_t>(sp->genes.size()));
    sp->genes.push_back(std::move(g));
  }
  // Codes over this species' own file, as the release's recipe computes them.
  const std::string chromFile = resolve(dir_, a.chromFile);
  std::vector<GenePosition> rows = readGenePositions(chromFile, a.name);
  std::vector<std::string> names = sortedChromosomes(rows);
  if (static_cast<int64_t>(names.size()) != a.chromTokens)
    uce::fail(uce::ErrorKind::Format, chromFile,
              std::to_string(names.size()) + " chromosomes, but new_species.csv gives species '" + a.name + "' " +
                  std::to_string(a.chromTokens) + " chromosome tokens");
  for (const auto& r : rows) {
    const auto code = std::lower_bound(names.begin(), names.end(), r.chromosome) - names.begin();
    sp->chromPos.emplace(r.symbol, std::make_pair(static_cast<int32_t>(code), r.start));
  }
  sp->chromTokenOffset = a.chromTokenOffset;
  return *loaded_.emplace(a.name, std::move(sp)).first->second;
}

bool AssetBundle::hasTokenTable() const { return fs::exists(dir_ + "/all_tokens.torch"); }

at::Tensor AssetBundle::tokenTable() const {
  if (!hasTokenTable()) return {};
  return loadTensor(dir_ + "/all_tokens.torch");
}

}  // namespace uce::model
