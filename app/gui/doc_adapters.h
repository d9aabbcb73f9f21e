#pragma once
// Converters between the workspace's documents (core types) and what the views show: obs
// columns as table columns and as map colourings, DE tables as view rows, and a gene's
// log-normalised expression per cell (read from the counts on a worker thread).
#include <QString>
#include <QStringList>
#include <cstdint>
#include <vector>

#include "uce/core/dataframe.h"
#include "uce/views/de_result.h"
#include "uce/views/table_models.h"

namespace uce::gui {

class JobContext;
struct DeTable;

// An obs column as the cell table shows it (same kind, same values).
uce::views::TableColumn toTableColumn(const uce::Column& c);

// How the map colours cells by one obs column: categorical (codes [n] into names, -1 missing)
// for categorical, bool and string columns; continuous (values [n], NaN missing) for numbers.
struct MapColoring {
  bool categorical = true;
  std::vector<int32_t> codes;
  QStringList names;
  std::vector<float> values;
  QString error;  // why the column cannot colour the map ("" = fine)
};
// String columns with more distinct values than this are refused (a legend would be useless).
constexpr int kMaxColorCategories = 1000;
MapColoring coloringOf(const uce::Column& c);

// DE results as the DE table / volcano plot show them.
std::vector<uce::views::DeRow> toDeRows(const DeTable& t);

// The names a user may type to colour by a gene: var_names, then the gene-symbol column
// (when there is one), without duplicates.
QStringList geneNames(const uce::DataFrame& var, const QString& geneColumn);

// Expression of one gene per cell: log1p(count / cell total * 10,000) over the dataset's raw
// counts (the matrix `uce de` would choose), [cells] float32. The gene is looked up in
// var_names, then in `geneColumn`, then case-insensitively. Runs on a worker thread; reports
// progress in cells and honours cancel. Throws uce::Error naming the file and what to do.
std::vector<float> geneExpression(const QString& path, const QString& gene, const QString& geneColumn,
                                  JobContext& ctx);

}  // namespace uce::gui
