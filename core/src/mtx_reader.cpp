// Matrix Market folder as CellRanger writes it (filtered_feature_bc_matrix/):
//   matrix.mtx[.gz]    genes x cells, "%%MatrixMarket matrix coordinate integer|real general"
//   features.tsv[.gz]  CellRanger 3: id, name, feature type (tab separated), one per gene
//   genes.tsv[.gz]     CellRanger 2: id, name
//   barcodes.tsv[.gz]  one cell barcode per line
// GEO downloads often prefix the names ("GSM123_matrix.mtx.gz"); one prefix per folder is fine.
// Coordinate text cannot be sliced by cell, so the whole matrix is loaded once into CSR over
// cells (MemoryCsrDataset); memory is bounded by the entries in the file.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <filesystem>

#include "memory_csr_dataset.h"
#include "readers.h"
#include "tenx_features.h"
#include "text_lines.h"
#include "uce/core/error.h"

namespace uce {
namespace {

namespace fs = std::filesystem;

// The one file in `dir` whose name is, or ends with, one of `names` (with or without .gz).
// Returns "" when there is none; throws when several would match.
std::string findInFolder(const std::string& dir, const std::vector<std::string>& names) {
  for (const auto& n : names)
    for (const char* gz : {"", ".gz"}) {
      fs::path p = fs::path(dir) / (n + gz);
      std::error_code ec;
      if (fs::is_regular_file(p, ec)) return p.string();
    }
  std::vector<std::string> found;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string file = it->path().filename().string();
    for (const auto& n : names)
      if (text::endsWithNoCase(file, "_" + n) || text::endsWithNoCase(file, "_" + n + ".gz") ||
          text::endsWithNoCase(file, "." + n) || text::endsWithNoCase(file, "." + n + ".gz"))
        found.push_back(it->path().string());
  }
  if (found.size() > 1) {
    std::sort(found.begin(), found.end());
    fail(ErrorKind::InvalidArgument, dir,
         "several files could be the " + names.front() + " (" + found[0] + ", " + found[1] +
             "); keep one sample per folder");
  }
  return found.empty() ? std::string() : found[0];
}

// Lines of a one-record-per-line file; blank lines at the end are ignored, elsewhere an error.
template <typename OnLine>
void readRecords(const std::string& file, const char* what, OnLine onLine) {
  text::LineReader in(file);
  std::string line;
  int64_t blankLine = 0;
  while (in.next(line)) {
    if (line.find_first_not_of(" \t") == std::string::npos) {
      if (blankLine == 0) blankLine = in.lineNumber();
      continue;
    }
    if (blankLine)
      fail(ErrorKind::Format, file,
           "line " + std::to_string(blankLine) + " is empty; every line should hold one " + what);
    onLine(line, in.lineNumber());
  }
}

std::vector<std::string> readBarcodes(const std::string& file) {
  std::vector<std::string> barcodes;
  readRecords(file, "barcode", [&](const std::string& line, int64_t) {
    barcodes.push_back(line.substr(0, line.find('\t')));
  });
  return barcodes;
}

FeatureTable readFeatures(const std::string& file) {
  FeatureTable t;
  std::vector<std::string> fields;
  size_t width = 0;
  readRecords(file, "gene", [&](const std::string& line, int64_t lineNo) {
    fields.clear();  // plain tab split: quotes are not special in CellRanger's TSV
    for (size_t start = 0;;) {
      const size_t tab = line.find('\t', start);
      fields.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
      if (tab == std::string::npos || fields.size() == 3) break;
      start = tab + 1;
    }
    if (width == 0) width = fields.size();
    if (fields.size() != width)
      fail(ErrorKind::Format, file,
           "line " + std::to_string(lineNo) + " has " + std::to_string(fields.size()) +
               " columns but line 1 has " + std::to_string(width) +
               " (expected gene id, gene name[, feature type] separated by tabs)");
    const std::string& name = fields.size() >= 2 ? fields[1] : fields[0];
    if (name.empty())
      fail(ErrorKind::Format, file, "line " + std::to_string(lineNo) + " has an empty gene name");
    t.ids.push_back(fields[0]);
    t.names.push_back(name);
    if (fields.size() >= 3) t.types.push_back(fields[2]);
  });
  return t;
}

struct MtxHeader {
  std::string field;  // integer, real, pattern
  int64_t rows = 0, cols = 0, entries = 0;
  int64_t sizeLine = 0;
};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

MtxHeader readHeader(text::LineReader& in) {
  const std::string& file = in.path();
  std::string line;
  std::vector<std::string> tok;
  if (!in.next(line)) fail(ErrorKind::Empty, file, "the matrix file is empty");
  text::splitWhitespace(line, tok);
  for (auto& t : tok) t = lower(t);
  if (tok.size() != 5 || tok[0] != "%%matrixmarket" || tok[1] != "matrix")
    fail(ErrorKind::Format, file,
         "line 1 is " + text::quoteForMessage(line) +
             " but a Matrix Market file starts with '%%MatrixMarket matrix coordinate integer general'");
  if (tok[2] != "coordinate")
    fail(ErrorKind::Unsupported, file,
         "line 1: only sparse 'coordinate' Matrix Market files are read, not '" + tok[2] + "'");
  if (tok[3] != "integer" && tok[3] != "real" && tok[3] != "double" && tok[3] != "pattern")
    fail(ErrorKind::Unsupported, file,
         "line 1: values of type '" + tok[3] + "' are not counts (expected integer or real)");
  if (tok[4] != "general")
    fail(ErrorKind::Unsupported, file,
         "line 1: '" + tok[4] + "' matrices are not count matrices (expected 'general')");
  MtxHeader h;
  h.field = tok[3];
  while (in.next(line)) {
    if (line.empty() || line[0] == '%' || line.find_first_not_of(" \t") == std::string::npos) continue;
    text::splitWhitespace(line, tok);
    h.sizeLine = in.lineNumber();
    if (tok.size() != 3 || !text::parseInt(tok[0], h.rows) || !text::parseInt(tok[1], h.cols) ||
        !text::parseInt(tok[2], h.entries) || h.rows < 0 || h.cols < 0 || h.entries < 0)
      fail(ErrorKind::Format, file,
           "line " + std::to_string(h.sizeLine) + " is " + text::quoteForMessage(line) +
               " but should give 'genes cells entries' as three whole numbers");
    return h;
  }
  fail(ErrorKind::Format, file, "no size line ('genes cells entries') after the header");
}

}  // namespace

std::unique_ptr<Dataset> openMtxDir(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(ErrorKind::Io, dir, "not a folder");
  const std::string matrixFile = findInFolder(dir, {"matrix.mtx"});
  const std::string featuresFile = findInFolder(dir, {"features.tsv", "genes.tsv"});
  const std::string barcodesFile = findInFolder(dir, {"barcodes.tsv"});
  if (matrixFile.empty())
    fail(ErrorKind::MissingMatrix, dir, "no matrix.mtx or matrix.mtx.gz in this folder");
  if (featuresFile.empty())
    fail(ErrorKind::Io, dir,
         "no features.tsv(.gz) or genes.tsv(.gz) beside the matrix: the gene names are needed");
  if (barcodesFile.empty())
    fail(ErrorKind::Io, dir, "no barcodes.tsv(.gz) beside the matrix: the cell barcodes are needed");

  auto ds = std::make_unique<MemoryCsrDataset>(dir, "mtx");
  ds->obsFrame.index = readBarcodes(barcodesFile);
  FeatureTable features = readFeatures(featuresFile);

  text::LineReader in(matrixFile);
  const MtxHeader h = readHeader(in);
  const auto nFeatures = static_cast<int64_t>(features.names.size());
  const auto nBarcodes = static_cast<int64_t>(ds->obsFrame.index.size());
  if (h.rows != nFeatures)
    fail(ErrorKind::Shape, matrixFile,
         "line " + std::to_string(h.sizeLine) + " declares " + std::to_string(h.rows) + " genes but " +
             fs::path(featuresFile).filename().string() + " lists " + std::to_string(nFeatures));
  if (h.cols != nBarcodes)
    fail(ErrorKind::Shape, matrixFile,
         "line " + std::to_string(h.sizeLine) + " declares " + std::to_string(h.cols) + " cells but " +
             fs::path(barcodesFile).filename().string() + " lists " + std::to_string(nBarcodes));
  if (h.rows > INT32_MAX || h.cols > INT32_MAX)
    fail(ErrorKind::Unsupported, matrixFile, "more than 2^31 genes or cells");

  const FeatureSelection sel = selectGeneExpression(features, featuresFile);
  ds->varFrame = featureVar(features, sel);
  if (!sel.note.empty()) ds->notes[kNoteDroppedFeatures] = UnsValue::str(sel.note);
  ds->ncols = sel.kept;

  const bool pattern = h.field == "pattern", integer = h.field == "integer";
  ds->dtype = integer || pattern ? DType::Int64 : DType::Float64;  // as scipy.io.mmread gives
  std::vector<int32_t> cellOf, geneOf;
  std::vector<float> valueOf;
  const auto reserve = static_cast<size_t>(std::min<int64_t>(h.entries, int64_t{1} << 22));
  cellOf.reserve(reserve);
  geneOf.reserve(reserve);
  valueOf.reserve(reserve);

  std::string line;
  std::vector<std::string> tok;
  int64_t seen = 0;
  const size_t want = pattern ? 2 : 3;
  while (in.next(line)) {
    if (line.empty() || line[0] == '%' || line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = "line " + std::to_string(in.lineNumber());
    if (++seen > h.entries)
      fail(ErrorKind::Format, matrixFile,
           where + ": more entries than the " + std::to_string(h.entries) + " declared on line " +
               std::to_string(h.sizeLine) + "; the header or the file is wrong");
    text::splitWhitespace(line, tok);
    int64_t gene = 0, cell = 0;
    double value = 1;
    if (tok.size() != want || !text::parseInt(tok[0], gene) || !text::parseInt(tok[1], cell) ||
        (!pattern && !text::parseDouble(tok[2], value)))
      fail(ErrorKind::Format, matrixFile,
           where + " is " + text::quoteForMessage(line) + " but should be '" +
               (pattern ? "gene cell" : "gene cell value") + "' (whole-number positions)");
    if (gene < 1 || gene > h.rows || cell < 1 || cell > h.cols)
      fail(ErrorKind::Format, matrixFile,
           where + ": entry (" + std::to_string(gene) + ", " + std::to_string(cell) +
               ") is outside the declared " + std::to_string(h.rows) + " genes x " +
               std::to_string(h.cols) + " cells (positions start at 1)");
    if (!std::isfinite(value) || std::fabs(value) > FLT_MAX)
      fail(ErrorKind::NotFinite, matrixFile,
           where + ": value " + tok[2] +
               (std::isfinite(value) ? " is too large for 32-bit floats" : " is not a finite number"));
    if (integer && value != std::floor(value))
      fail(ErrorKind::Format, matrixFile,
           where + ": value " + tok[2] + " is not a whole number but line 1 declares 'integer'");
    const int32_t col = sel.newIndex.empty() ? static_cast<int32_t>(gene - 1)
                                             : sel.newIndex[static_cast<size_t>(gene - 1)];
    if (col < 0) continue;  // feature that is not gene expression
    cellOf.push_back(static_cast<int32_t>(cell - 1));
    geneOf.push_back(col);
    valueOf.push_back(static_cast<float>(value));
  }
  if (seen != h.entries)
    fail(ErrorKind::Format, matrixFile,
         "line " + std::to_string(h.sizeLine) + " declares " + std::to_string(h.entries) +
             " entries but the file has " + std::to_string(seen) + " (it ends at line " +
             std::to_string(in.lineNumber()) + "); the file may be truncated");
  triplesToCsr(h.cols, cellOf, geneOf, valueOf, *ds);
  // Duplicate gene names are the features file's problem; zero cells or genes the matrix's.
  ds->finish(ds->cells() == 0 || ds->ncols == 0 ? matrixFile : featuresFile);
  return ds;
}

}  // namespace uce
