#include "uce/model/assets.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "uce/core/error.h"
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

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// One CSV record with RFC 4180 quoting.
std::vector<std::string> splitCsv(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') { cur += '"'; ++i; }
      else if (c == '"') quoted = false;
      else cur += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else if (c != '\r') {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

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

}  // namespace

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
  auto header = splitCsv(line);
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
    auto f = splitCsv(line);
    if (f.size() <= need)
      uce::fail(uce::ErrorKind::Format, chromPath, "line " + std::to_string(lineNo) + " has too few fields");
    Row r;
    r.species = f[cSpecies];
    r.gene = upper(f[cGene]);
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
              "unknown species '" + name + "'; this asset directory has: " + known);
  }
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
    std::string g = upper(kv.first);
    sp->index.emplace(g, static_cast<int32_t>(sp->genes.size()));
    sp->genes.push_back(std::move(g));
  }
  auto c = chrom_.find(name);
  if (c != chrom_.end()) sp->chromPos = c->second;
  return *loaded_.emplace(name, std::move(sp)).first->second;
}

bool AssetBundle::hasTokenTable() const { return fs::exists(dir_ + "/all_tokens.torch"); }

at::Tensor AssetBundle::tokenTable() const {
  if (!hasTokenTable()) return {};
  return loadTensor(dir_ + "/all_tokens.torch");
}

}  // namespace uce::model
