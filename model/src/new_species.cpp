#include "uce/model/new_species.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <unordered_set>

// species_offsets.pkl is written by core's pickle writer (private to uce_core, linked with it).
#include "uce/core/pickle_writer.h"
#include "uce/core/error.h"
#include "uce/core/remove_tree.h"
#include "uce/core/text.h"
#include "uce/core/sha256.h"
#include "uce/core/synth.h"
#include "uce/model/assets.h"
#include "uce/model/torch_file.h"

namespace uce::model {
namespace fs = std::filesystem;
namespace {

std::string shapeOf(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t d = 0; d < t.dim(); ++d) s += (d ? ", " : "") + std::to_string(t.size(d));
  return s + "]";
}

// The message of a uce::Error without its leading "FILE: ".
std::string bareMessage(const uce::Error& e, const std::string& file) {
  std::string m = e.what();
  if (m.rfind(file + ": ", 0) == 0) m.erase(0, file.size() + 2);
  return m;
}

// A file of the base bundle in the new one: a hard link (no copy of gigabytes; every write
// here replaces files by rename, so the base's files are never touched), else a copy.
void linkOrCopy(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_hard_link(from, to, ec);
  if (!ec) return;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) fail(ErrorKind::Io, to.string(), "cannot copy " + from.string() + " here (" + ec.message() + ")");
}

std::string readText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Removes the half-written folder unless the extension was committed.
struct TempDir {
  fs::path path;
  bool keep = false;
  ~TempDir() {
    if (keep || path.empty()) return;
    uce::removeTree(path.string());
  }
};

// What the extension is made from: the inputs' bytes and the base bundle's small files (and
// the size of its token table), so a reused extension is the one these inputs would give.
std::string extensionSignature(const AssetBundle& base, const NewSpeciesOptions& o, uint64_t seed,
                               const std::string& modelFile) {
  std::string s = "uce add-species 1|" + o.name + "|" + std::to_string(seed) + "|" + sha256File(o.proteinEmbeddings) +
                  "|" + sha256File(o.positionsCsv);
  for (const char* f : {"species_offsets.pkl", "species_chrom.csv", "new_species.csv"}) {
    const std::string p = base.dir() + "/" + f;
    s += "|" + std::string(f) + ":" + (fs::exists(p) ? sha256File(p) : "-");
  }
  const std::string tokens = base.dir() + "/all_tokens.torch";
  s += "|tokens:" + std::to_string(fs::exists(tokens) ? fs::file_size(tokens)
                                                      : (fs::exists(modelFile) ? fs::file_size(modelFile) : 0));
  return sha256(s);
}

NewSpeciesReport reportOf(const AddedSpecies& a, const std::string& dir) {
  NewSpeciesReport r;
  r.dir = dir;
  r.reused = true;
  r.offset = a.offset;
  r.genes = a.chromTokenOffset - a.offset;
  r.chromTokenOffset = a.chromTokenOffset;
  r.chromTokens = a.chromTokens;
  r.seed = a.seed;
  return r;
}

// The species' gene rows [genes, token_dim] float32 in the .pt's key order.
at::Tensor proteinRows(const std::string& path, int64_t tokenDim, std::vector<std::string>& genes) {
  const std::string expected =
      "expected a torch.save'd dict gene symbol -> float tensor [" + std::to_string(tokenDim) +
      "] (as the release's protein_embeddings/<Species>.<assembly>.gene_symbol_to_embedding_ESM2.pt)";
  NamedTensors emb;
  try {
    emb = loadTensorDict(path);
  } catch (const uce::Error& e) {
    fail(ErrorKind::Format, path, "not a protein-embedding file: " + expected + "; " + bareMessage(e, path));
  }
  if (emb.empty()) fail(ErrorKind::Format, path, "the protein-embedding dict is empty");
  std::vector<at::Tensor> rows;
  rows.reserve(emb.size());
  for (auto& kv : emb) {
    const at::Tensor& v = kv.second;
    if (!v.defined() || !v.is_floating_point() || v.dim() != 1 || v.size(0) != tokenDim)
      fail(ErrorKind::Format, path,
           "gene '" + kv.first + "' has a " + (v.defined() ? std::string(c10::toString(v.scalar_type())) + " tensor " + shapeOf(v) : "missing tensor") +
               ", but this token table needs float vectors of " + std::to_string(tokenDim) +
               " values: the embeddings must come from the same protein model as the bundle's (ESM2-15B, 5120 "
               "values, for the release)");
    genes.push_back(toUpper(kv.first));
    rows.push_back(v.to(torch::kFloat));
  }
  return torch::stack(rows);
}

}  // namespace

uint64_t defaultSpeciesSeed(const std::string& name) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : name) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h >> 1;  // below 2^63: valid for torch.manual_seed in Python too
}

NewSpeciesReport addSpecies(const std::string& baseDir, const NewSpeciesOptions& o, const std::string& outDir) {
  if (o.name.empty() || !std::all_of(o.name.begin(), o.name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
      }))
    fail(ErrorKind::InvalidArgument, "", "species name '" + o.name + "': use letters, digits, '_', '-' or '.' (e.g. gorilla)");
  if (o.proteinEmbeddings.empty() || o.positionsCsv.empty())
    fail(ErrorKind::InvalidArgument, "", "a new species needs both its protein embeddings (.pt) and its gene positions (CSV)");
  if (!fs::is_regular_file(o.proteinEmbeddings))
    fail(ErrorKind::Io, o.proteinEmbeddings, "protein-embedding file not found");
  if (!fs::is_regular_file(o.positionsCsv)) fail(ErrorKind::Io, o.positionsCsv, "gene-position CSV not found");
  if (outDir.empty()) fail(ErrorKind::InvalidArgument, "", "give a folder for the extended asset bundle");
  std::error_code ec;
  if (fs::exists(outDir) && fs::equivalent(baseDir, outDir, ec))
    fail(ErrorKind::InvalidArgument, outDir,
         "the extended bundle must go to another folder: the original asset directory is never modified");

  AssetBundle base(baseDir);
  const uint64_t seed = o.seed >= 0 ? static_cast<uint64_t>(o.seed) : defaultSpeciesSeed(o.name);
  const std::string modelFile = o.modelFile.empty() ? baseDir + "/model.torch" : o.modelFile;
  const std::string signature = extensionSignature(base, o, seed, modelFile);

  // A second run with the same inputs finds the saved extension and reuses it.
  fs::path out = fs::absolute(outDir).lexically_normal();
  if (!out.has_filename()) out = out.parent_path();
  if (fs::exists(out) && !(fs::is_directory(out) && fs::is_empty(out))) {
    if (fs::exists(out / "new_species.csv")) {
      AssetBundle ext(out.string());
      for (const auto& a : ext.addedSpecies())
        if (a.name == o.name && a.sourceSha256 == signature) return reportOf(a, out.string());
      for (const auto& a : ext.addedSpecies())
        if (a.name == o.name)
          fail(ErrorKind::InvalidArgument, out.string(),
               "holds species '" + o.name + "' made from other files (or another base bundle or seed); "
               "remove the folder or choose another one for the extended bundle");
    }
    fail(ErrorKind::InvalidArgument, out.string(),
         "already exists and does not hold species '" + o.name + "'; choose a new folder for the extended bundle");
  }
  for (const auto& s : base.speciesNames())
    if (s == o.name)
      fail(ErrorKind::InvalidArgument, baseDir,
           "species '" + o.name + "' is already in this asset directory: embed it with --species " + o.name +
               " (no extension needed)");

  // The base token table, completed with the release's chromosome rows when it lacks them, so
  // that the new rows go after every existing token.
  at::Tensor table = base.tokenTable();
  if (!table.defined()) {
    if (!fs::exists(modelFile))
      fail(ErrorKind::Io, baseDir, "no all_tokens.torch here: give the model file whose pe_embedding holds the token table");
    for (auto& kv : loadTensorDict(modelFile))
      if (kv.first == "pe_embedding.weight") table = kv.second;
    if (!table.defined())
      fail(ErrorKind::Io, baseDir, "no all_tokens.torch here and " + modelFile + " carries no pe_embedding.weight");
  }
  if (table.dim() != 2) fail(ErrorKind::Format, baseDir, "the token table is not a matrix: " + shapeOf(table));
  table = withChromosomeRows(table.to(torch::kFloat), base.chromTokenOffset());
  const int64_t R = table.size(0), D = table.size(1);

  std::vector<std::string> genes;
  at::Tensor geneRows = proteinRows(o.proteinEmbeddings, D, genes);
  std::vector<GenePosition> positions = readGenePositions(o.positionsCsv, o.name);
  const std::vector<std::string> chroms = sortedChromosomes(positions);
  NewSpeciesReport rep;
  rep.dir = out.string();
  rep.offset = R;
  rep.genes = static_cast<int64_t>(genes.size());
  rep.chromTokenOffset = R + rep.genes;
  rep.chromTokens = static_cast<int64_t>(chroms.size());
  rep.tokens = rep.chromTokenOffset + rep.chromTokens;
  rep.seed = seed;
  std::unordered_set<std::string> geneSet(genes.begin(), genes.end()), placed;
  for (const auto& p : positions) {
    placed.insert(p.symbol);
    rep.positionsWithoutEmbedding += geneSet.count(p.symbol) == 0;
  }
  std::string unplacedExamples;
  for (const auto& g : genes)
    if (!placed.count(g)) {
      ++rep.genesWithoutPosition;
      if (rep.genesWithoutPosition <= 3) unplacedExamples += (unplacedExamples.empty() ? "" : ", ") + g;
    }
  if (rep.genesWithoutPosition == rep.genes)
    fail(ErrorKind::Format, o.positionsCsv,
         "none of the " + std::to_string(rep.genes) + " genes of " + o.proteinEmbeddings +
             " has a position here (e.g. " + unplacedExamples + "): do the gene symbols match?");

  // Chromosome rows as the release's recipe draws them: torch.manual_seed(seed), then
  // torch.normal(0, 1, (n_chromosomes, token_dim)); row k is the k-th sorted chromosome.
  at::Generator gen = at::detail::createCPUGenerator(seed);
  at::Tensor chromRows = at::normal(0.0, 1.0, {rep.chromTokens, D}, gen);
  at::Tensor full = torch::cat({table, geneRows, chromRows}, 0);
  table = at::Tensor();
  geneRows = at::Tensor();

  // Build the bundle in a sibling temporary folder, then rename it into place.
  fs::create_directories(out.parent_path(), ec);
  if (ec) fail(ErrorKind::Io, out.parent_path().string(), "cannot create the folder (" + ec.message() + ")");
  TempDir tmp;
  tmp.path = out.string() + ".tmp-" + std::to_string(static_cast<long long>(::getpid()));
  uce::removeTree(tmp.path.string());
  fs::create_directories(tmp.path / "protein_embeddings", ec);
  if (ec) fail(ErrorKind::Io, tmp.path.string(), "cannot create the folder (" + ec.message() + ")");
  const std::set<std::string> rewritten = {"all_tokens.torch", "species_offsets.pkl", "new_species.csv", "manifest.json"};
  for (const auto& e : fs::directory_iterator(baseDir)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && !rewritten.count(name) && name.find(".tmp-") == std::string::npos)
      linkOrCopy(e.path(), tmp.path / name);
  }
  if (fs::is_directory(fs::path(baseDir) / "protein_embeddings"))
    for (const auto& e : fs::directory_iterator(fs::path(baseDir) / "protein_embeddings"))
      if (e.is_regular_file()) linkOrCopy(e.path(), tmp.path / "protein_embeddings" / e.path().filename());

  std::string ptName = fs::path(o.proteinEmbeddings).filename().string();
  if (fs::exists(tmp.path / "protein_embeddings" / ptName)) ptName = o.name + "." + ptName;
  const std::string ptRel = "protein_embeddings/" + ptName;
  linkOrCopy(o.proteinEmbeddings, tmp.path / ptRel);

  const std::string chromRel = o.name + "_to_chrom_pos.csv";
  std::string csv = "gene_symbol,chromosome,start,species\n";
  for (const auto& p : positions)
    csv += csvField(p.symbol) + "," + csvField(p.chromosome) + "," + std::to_string(p.start) + "," + csvField(o.name) + "\n";
  writeFileAtomic((tmp.path / chromRel).string(), csv);

  writeFileAtomic((tmp.path / "all_tokens.torch").string(), torchSaveTensor(full));
  full = at::Tensor();

  auto offsets = loadStrIntPickle(baseDir + "/species_offsets.pkl");  // file order kept
  offsets.emplace_back(o.name, rep.offset);
  writeFileAtomic((tmp.path / "species_offsets.pkl").string(), pickleDictStrInt(offsets));

  std::string added = "species,path,chrom_file,offset,chrom_token_offset,n_chrom_tokens,seed,source_sha256\n";
  auto addRow = [&](const AddedSpecies& a) {
    added += csvField(a.name) + "," + csvField(a.embeddingFile) + "," + csvField(a.chromFile) + "," +
             std::to_string(a.offset) + "," + std::to_string(a.chromTokenOffset) + "," + std::to_string(a.chromTokens) +
             "," + std::to_string(a.seed) + "," + a.sourceSha256 + "\n";
  };
  for (const auto& a : base.addedSpecies()) addRow(a);
  addRow({o.name, ptRel, chromRel, rep.offset, rep.chromTokenOffset, rep.chromTokens, seed, signature});
  writeFileAtomic((tmp.path / "new_species.csv").string(), added);

  // manifest.json (our bundles): the same, with the new row count.
  const std::string manifest = baseDir + "/manifest.json";
  if (fs::exists(manifest)) {
    std::string text = readText(manifest);
    const size_t k = text.find("\"n_tokens\"");
    if (k != std::string::npos) {
      size_t a = text.find(':', k) + 1;
      while (a < text.size() && text[a] == ' ') ++a;
      size_t b = a;
      while (b < text.size() && std::isdigit(static_cast<unsigned char>(text[b]))) ++b;
      text.replace(a, b - a, std::to_string(rep.tokens));
    }
    writeFileAtomic((tmp.path / "manifest.json").string(), text);
  }

  if (fs::exists(out)) fs::remove(out, ec);  // an empty folder the user made for it
  fs::rename(tmp.path, out, ec);
  if (ec) fail(ErrorKind::Io, out.string(), "cannot move the finished bundle into place (" + ec.message() + ")");
  tmp.keep = true;
  return rep;
}

}  // namespace uce::model
