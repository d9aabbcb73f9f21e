#pragma once
// What `uce info` and the app's "dataset summary" report about an opened dataset.
#include <string>
#include <vector>

#include "uce/core/dataset.h"
#include "uce/core/text.h"

namespace uce {

struct ColumnSummary {
  std::string name;
  std::string kind;      // columnKindName()
  size_t categories = 0; // for categoricals
};

struct GeneColumnGuess {
  std::string column;       // "" = var_names (the index), else a var column name
  std::string looksLike;    // "symbols" or "ensembl"
  double symbolFraction = 0;
  std::string reason;
};

struct SpeciesGuess {
  std::string species;  // "human", "mouse", ... or "unknown"
  std::string reason;
};

struct DatasetSummary {
  std::string path, format;
  int64_t cells = 0, genes = 0;
  std::vector<MatrixInfo> matrices;
  std::string countsKey;  // "" when no matrix holds raw counts
  std::string countsReason;
  std::vector<ColumnSummary> obsColumns, varColumns;
  std::vector<std::string> obsmKeys;
  GeneColumnGuess geneColumn;
  SpeciesGuess species;
};

// Guesses which var column (or the index) holds gene symbols rather than Ensembl ids.
GeneColumnGuess guessGeneColumn(const DataFrame& var);
// Guesses the species from Ensembl prefixes (ENSMUSG...) or symbol capitalisation (Dcn vs DCN).
SpeciesGuess guessSpecies(const DataFrame& var, const GeneColumnGuess& genes);
// Fraction of names that look like Ensembl gene ids (ENSG00000..., ENSMUSG...).
double ensemblFraction(const std::vector<std::string>& names);

DatasetSummary summarize(const Dataset& ds);
std::string toText(const DatasetSummary& s);
std::string toJson(const DatasetSummary& s);

}  // namespace uce
