// Dense count tables as CSV or TSV (optionally .gz), as pandas' to_csv and R's write.csv /
// write.table write them:
//   ,GENE1,GENE2,...        header: index name (or empty) then one name per column
//   cell1,0,3,...           one row per cell: its id, then one number per gene
// R's write.table leaves the corner cell out of the header; that is recognised from the first
// row having one field more than the header. With genesAsRows the table is genes x cells and is
// transposed. Text cannot be sliced by row, so the non-zeros are loaded once into CSR over
// cells (MemoryCsrDataset); memory is bounded by the file's non-zero values.
#include <cfloat>
#include <cmath>

#include "memory_csr_dataset.h"
#include "readers.h"
#include "text_lines.h"
#include "uce/core/error.h"

namespace uce {
namespace {

char chooseSeparator(const std::string& path, const std::string& header) {
  char preferred = 0;
  for (const char* ext : {".tsv", ".tsv.gz", ".tab", ".tab.gz"})
    if (text::endsWithNoCase(path, ext)) preferred = '\t';
  for (const char* ext : {".csv", ".csv.gz"})
    if (text::endsWithNoCase(path, ext)) preferred = ',';
  const bool tabs = header.find('\t') != std::string::npos;
  const bool commas = header.find(',') != std::string::npos;
  // The extension decides unless the header clearly uses the other separator
  // (a tab-separated file saved as .csv is a common slip).
  if (preferred == '\t') return tabs || !commas ? '\t' : ',';
  if (preferred == ',') return commas || !tabs ? ',' : '\t';
  return tabs ? '\t' : ',';
}

}  // namespace

std::unique_ptr<Dataset> openDelimited(const std::string& path, bool genesAsRows) {
  text::LineReader in(path);
  std::string line;
  auto nextNonBlank = [&]() {
    while (in.next(line))
      if (line.find_first_not_of(" \t\r") != std::string::npos) return true;
    return false;
  };
  if (!nextNonBlank()) fail(ErrorKind::Empty, path, "the file is empty (no header line)");
  if (line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);  // UTF-8 byte-order mark
  const char sep = chooseSeparator(path, line);
  const char* sepName = sep == '\t' ? "tab" : "comma";

  std::vector<std::string> header, fields;
  if (!text::splitFields(line, sep, header))
    fail(ErrorKind::Format, path, "line " + std::to_string(in.lineNumber()) + " has an unclosed quote");
  const int64_t headerLine = in.lineNumber();
  const char* rowWhat = genesAsRows ? "gene" : "cell";
  const char* colWhat = genesAsRows ? "cell" : "gene";

  auto ds = std::make_unique<MemoryCsrDataset>(path, "csv");
  ds->storage = Storage::Dense;
  std::vector<std::string> columnNames;  // one per numeric column
  std::string cornerName;
  std::vector<std::string> rowNames;
  bool integral = true;
  bool decided = false;  // whether the header has a corner cell, decided on the first row

  // Cells-as-rows goes straight into CSR; genes-as-rows collects (cell, gene, value) triplets.
  std::vector<int32_t> cellOf, geneOf;
  std::vector<float> valueOf;
  std::vector<int32_t> rowCols;
  std::vector<float> rowVals;
  CsrBlock rows;  // grows to the whole matrix in the cells-as-rows case

  while (nextNonBlank()) {
    const int64_t lineNo = in.lineNumber();
    if (!text::splitFields(line, sep, fields))
      fail(ErrorKind::Format, path, "line " + std::to_string(lineNo) + " has an unclosed quote");
    if (!decided) {
      decided = true;
      if (fields.size() == header.size() + 1) {
        columnNames = header;  // R write.table: no corner cell
      } else {
        cornerName = header.empty() ? "" : header[0];
        columnNames.assign(header.begin() + (header.empty() ? 0 : 1), header.end());
      }
      if (columnNames.size() > static_cast<size_t>(INT32_MAX))
        fail(ErrorKind::Unsupported, path, "more than 2^31 columns");
    }
    if (fields.size() != columnNames.size() + 1)
      fail(ErrorKind::Format, path,
           "line " + std::to_string(lineNo) + " has " + std::to_string(fields.size()) +
               " fields but the header (line " + std::to_string(headerLine) + ") implies " +
               std::to_string(columnNames.size() + 1) + " (a " + rowWhat + " name and " +
               std::to_string(columnNames.size()) + " values, " + sepName + "-separated)");
    const auto row = static_cast<int32_t>(rowNames.size());
    if (rowNames.size() >= static_cast<size_t>(INT32_MAX))
      fail(ErrorKind::Unsupported, path, "more than 2^31 rows");
    rowNames.push_back(fields[0]);
    rowCols.clear();
    rowVals.clear();
    for (size_t c = 1; c < fields.size(); ++c) {
      double v = 0;
      const bool number = text::parseDouble(fields[c], v);
      if (!number || !std::isfinite(v) || std::fabs(v) > FLT_MAX) {
        fail(number ? ErrorKind::NotFinite : ErrorKind::Format, path,
             "line " + std::to_string(lineNo) + ", column " + std::to_string(c + 1) + " (" + colWhat +
                 " " + text::quoteForMessage(columnNames[c - 1]) + "): " +
                 text::quoteForMessage(fields[c]) +
                 (!number ? " is not a number"
                          : std::isfinite(v) ? " is too large for 32-bit floats" : " is not a finite number"));
      }
      if (v == 0) continue;
      if (v != std::floor(v)) integral = false;
      const auto col = static_cast<int32_t>(c - 1);
      if (genesAsRows) {
        cellOf.push_back(col);
        geneOf.push_back(row);
        valueOf.push_back(static_cast<float>(v));
      } else {
        rowCols.push_back(col);
        rowVals.push_back(static_cast<float>(v));
      }
    }
    if (!genesAsRows) rows.appendRow(rowCols.data(), rowVals.data(), static_cast<int64_t>(rowCols.size()));
  }

  if (!decided && !header.empty()) {  // header only: no rows, but the columns are known
    cornerName = header[0];
    columnNames.assign(header.begin() + 1, header.end());
  }
  ds->dtype = integral ? DType::Int64 : DType::Float64;  // as pandas.read_csv would type it
  if (genesAsRows) {
    ds->obsFrame.index = std::move(columnNames);
    ds->varFrame.index = std::move(rowNames);
    if (!cornerName.empty()) ds->varFrame.indexName = cornerName;
    ds->ncols = static_cast<int64_t>(ds->varFrame.index.size());
    triplesToCsr(static_cast<int64_t>(ds->obsFrame.index.size()), cellOf, geneOf, valueOf, *ds);
  } else {
    ds->obsFrame.index = std::move(rowNames);
    ds->varFrame.index = std::move(columnNames);
    if (!cornerName.empty()) ds->obsFrame.indexName = cornerName;
    ds->ncols = static_cast<int64_t>(ds->varFrame.index.size());
    ds->indptr = std::move(rows.indptr);
    ds->indices = std::move(rows.indices);
    ds->values = std::move(rows.values);
  }
  ds->finish(path);
  return ds;
}

}  // namespace uce
