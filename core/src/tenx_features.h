#pragma once
// CellRanger feature tables, shared by the 10x HDF5 and Matrix Market readers.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "uce/core/dataframe.h"
#include "uce/core/dataset.h"

namespace uce {

// One row per feature, in file order. types/genome may be empty (CellRanger 2).
struct FeatureTable {
  std::vector<std::string> ids;    // Ensembl ids (features/id, column 1)
  std::vector<std::string> names;  // symbols (features/name, column 2)
  std::vector<std::string> types;  // "Gene Expression", "Antibody Capture", ...
  std::vector<std::string> genome;
};

// Which features become genes. UCE embeds gene expression only, so when the table mixes
// feature types, the "Gene Expression" rows are kept. newIndex[fileIndex] = gene column or
// -1; empty when every feature is kept.
struct FeatureSelection {
  std::vector<int32_t> newIndex;
  int64_t kept = 0;
  std::string note;  // what was dropped, for uns and the report; empty when nothing
};
// Throws Empty naming `file` when the table has feature types but none is gene expression.
FeatureSelection selectGeneExpression(const FeatureTable& t, const std::string& file);

// var for the kept features: index = names (as given), columns gene_ids, feature_types,
// genome (those present).
DataFrame featureVar(const FeatureTable& t, const FeatureSelection& sel);

// anndata's var_names_make_unique: later repeats of a name become NAME-1, NAME-2, ...,
// skipping names already taken. Returns how many names changed.
int64_t makeNamesUnique(std::vector<std::string>& names);

// uns keys under which readers note what they changed.
inline constexpr char kNoteDroppedFeatures[] = "uce_reader/dropped_features";
inline constexpr char kNoteRenamedGenes[] = "uce_reader/renamed_genes";

}  // namespace uce
