// Text files of the synthetic asset bundle (species_chrom.csv, species_offsets.pkl,
// manifest.json).
#include <filesystem>

#include "uce/core/pickle_writer.h"
#include "uce/core/error.h"
#include "uce/core/synth.h"
#include "uce/core/text.h"

#ifndef UCE_VERSION
#define UCE_VERSION "unknown"
#endif

namespace uce {

void writeSynthTextAssets(const SynthAssets& a, const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    fail(ErrorKind::Io, dir, "cannot create the asset folder (" + ec.message() + ")");

  std::string csv = "species,gene_symbol,chromosome,start\n";
  for (const auto& r : a.chromRows)
    csv += csvField(r.species) + "," + csvField(r.symbol) + "," + csvField(r.chromosome) + "," +
           std::to_string(r.start) + "\n";
  writeFileAtomic((fs::path(dir) / "species_chrom.csv").string(), csv);

  std::vector<std::pair<std::string, int64_t>> offsets;
  for (const auto& s : a.species) offsets.emplace_back(s.name, s.offset);
  writeFileAtomic((fs::path(dir) / "species_offsets.pkl").string(), pickleDictStrInt(offsets));

  const int64_t geneTokens = a.geneTokens();
  std::string j = "{\n";
  j += "  \"generator\": \"uce synth\",\n";
  j += "  \"version\": " + jsonQuote(UCE_VERSION) + ",\n";
  j += "  \"seed\": " + std::to_string(a.seed) + ",\n";
  j += "  \"token_dim\": " + std::to_string(a.tokenDim) + ",\n";
  j += "  \"n_tokens\": " + std::to_string(a.totalTokens()) + ",\n";
  j += "  \"n_gene_tokens\": " + std::to_string(geneTokens) + ",\n";
  j += "  \"chrom_token_offset\": " + std::to_string(geneTokens) + ",\n";
  j += "  \"n_chrom_tokens\": " + std::to_string(a.chromNames.size()) + ",\n";
  j += "  \"nhead\": 4,\n";
  j += "  \"token_file\": \"all_tokens.torch\",\n";
  j += "  \"offsets_file\": \"species_offsets.pkl\",\n";
  j += "  \"chrom_file\": \"species_chrom.csv\",\n";
  j += "  \"species\": [\n";
  for (size_t i = 0; i < a.species.size(); ++i) {
    const auto& s = a.species[i];
    j += "    {\"name\": " + jsonQuote(s.name) + ", \"offset\": " + std::to_string(s.offset) +
         ", \"n_genes\": " + std::to_string(s.tokens.size()) +
         ", \"embedding_file\": " + jsonQuote(a.embeddingFile(s)) + "}" +
         (i + 1 < a.species.size() ? "," : "") + "\n";
  }
  j += "  ]\n}\n";
  writeFileAtomic((fs::path(dir) / "manifest.json").string(), j);
}

}  // namespace uce
