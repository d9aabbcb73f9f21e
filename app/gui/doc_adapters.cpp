#include "doc_adapters.h"

#include <QSet>
#include <cmath>
#include <map>

#include "jobs.h"
#include "uce/core/dataset.h"
#include "uce/core/error.h"
#include "workspace.h"

namespace uce::gui {

using uce::views::TableColumn;

namespace {
QString q(const std::string& s) { return QString::fromStdString(s); }
}  // namespace

TableColumn toTableColumn(const Column& c) {
  const QString name = q(c.name);
  TableColumn t;
  switch (c.kind) {
    case ColumnKind::Categorical: {
      QStringList cats;
      cats.reserve(static_cast<int>(c.categories.size()));
      for (const auto& s : c.categories) cats << q(s);
      t = TableColumn::makeCategorical(name, c.codes, cats);
      break;
    }
    case ColumnKind::Float: t = TableColumn::makeDoubles(name, c.floats); break;
    case ColumnKind::Int: t = TableColumn::makeInts(name, c.ints); break;
    case ColumnKind::Bool: t = TableColumn::makeBools(name, c.bools); break;
    case ColumnKind::String: t = TableColumn::makeStrings(name, c.strings); break;
  }
  t.missing = c.missing;
  return t;
}

MapColoring coloringOf(const Column& c) {
  MapColoring m;
  const size_t n = c.size();
  auto isMissing = [&](size_t i) { return !c.missing.empty() && c.missing[i]; };
  switch (c.kind) {
    case ColumnKind::Categorical:
      m.codes = c.codes;
      for (const auto& s : c.categories) m.names << q(s);
      for (size_t i = 0; i < n; ++i)
        if (isMissing(i)) m.codes[i] = -1;
      break;
    case ColumnKind::Bool:
      m.names = {"False", "True"};
      m.codes.resize(n);
      for (size_t i = 0; i < n; ++i) m.codes[i] = isMissing(i) ? -1 : (c.bools[i] ? 1 : 0);
      break;
    case ColumnKind::String: {
      std::map<std::string, int32_t> ids;
      for (const auto& s : c.strings)
        if (!s.empty()) ids.emplace(s, 0);
      if (ids.size() > static_cast<size_t>(kMaxColorCategories)) {
        m.error = QString("obs column '%1' holds %2 different texts, too many to colour by; "
                          "choose a categorical column (e.g. a cell type) instead")
                      .arg(q(c.name))
                      .arg(ids.size());
        return m;
      }
      int32_t k = 0;
      for (auto& [s, id] : ids) {
        id = k++;
        m.names << q(s);
      }
      m.codes.resize(n);
      for (size_t i = 0; i < n; ++i) m.codes[i] = c.strings[i].empty() ? -1 : ids[c.strings[i]];
      break;
    }
    case ColumnKind::Float:
    case ColumnKind::Int:
      m.categorical = false;
      m.values.resize(n);
      for (size_t i = 0; i < n; ++i)
        m.values[i] = isMissing(i) ? NAN
                                   : static_cast<float>(c.kind == ColumnKind::Float ? c.floats[i]
                                                                                     : static_cast<double>(c.ints[i]));
      break;
  }
  return m;
}

std::vector<uce::views::DeRow> toDeRows(const DeTable& t) {
  std::vector<uce::views::DeRow> rows;
  rows.reserve(static_cast<size_t>(t.genes.size()));
  for (const DeGeneRow& g : t.genes) {
    uce::views::DeRow r;
    r.gene = g.gene;
    r.log2FoldChange = g.log2fc;
    r.pctIn = g.pctIn;
    r.pctOut = g.pctOut;
    r.meanIn = g.meanIn;
    r.meanOut = g.meanOut;
    r.pValue = g.pval;
    r.pAdjusted = g.pvalAdj;
    rows.push_back(r);
  }
  return rows;
}

QStringList geneNames(const DataFrame& var, const QString& geneColumn) {
  QStringList out;
  QSet<QString> seen;
  auto add = [&](const std::string& s) {
    const QString g = q(s);
    if (!g.isEmpty() && !seen.contains(g)) {
      seen.insert(g);
      out << g;
    }
  };
  for (const auto& s : var.index) add(s);
  if (const Column* c = geneColumn.isEmpty() ? nullptr : var.find(geneColumn.toStdString()))
    for (size_t i = 0; i < c->size(); ++i) add(c->valueAsString(i));
  return out;
}

namespace {

// Column of `gene` in `var`: var_names, then the symbol column, then case-insensitively; -1.
int64_t findGene(const DataFrame& var, const std::string& gene, const std::string& geneColumn) {
  for (size_t i = 0; i < var.index.size(); ++i)
    if (var.index[i] == gene) return static_cast<int64_t>(i);
  const Column* c = geneColumn.empty() ? nullptr : var.find(geneColumn);
  if (c)
    for (size_t i = 0; i < c->size(); ++i)
      if (c->valueAsString(i) == gene) return static_cast<int64_t>(i);
  const QString g = q(gene);
  for (size_t i = 0; i < var.index.size(); ++i)
    if (q(var.index[i]).compare(g, Qt::CaseInsensitive) == 0) return static_cast<int64_t>(i);
  if (c)
    for (size_t i = 0; i < c->size(); ++i)
      if (q(c->valueAsString(i)).compare(g, Qt::CaseInsensitive) == 0) return static_cast<int64_t>(i);
  return -1;
}

}  // namespace

std::vector<float> geneExpression(const QString& path, const QString& gene, const QString& geneColumn,
                                  JobContext& ctx) {
  const std::string file = path.toStdString();
  ctx.report(0, 0, "opening");
  auto ds = openDataset(file);
  const CountsChoice counts = chooseCountsMatrix(*ds);
  const DataFrame& var = ds->varFor(counts.key);
  const int64_t col = findGene(var, gene.trimmed().toStdString(), geneColumn.toStdString());
  if (col < 0)
    fail(ErrorKind::InvalidArgument, file,
         "has no gene '" + gene.trimmed().toStdString() +
             "' in var_names" + (geneColumn.isEmpty() ? std::string() : " or var['" + geneColumn.toStdString() + "']") +
             ": type a gene name from the list the search box offers");
  const int64_t n = ds->cells();
  std::vector<float> out(static_cast<size_t>(n), 0.0f);
  RowStream stream(*ds, counts.key, 4096);
  CsrBlock b;
  while (stream.next(b)) {
    for (int64_t r = 0; r < b.rows(); ++r) {
      const int64_t p0 = b.indptr[static_cast<size_t>(r)], p1 = b.indptr[static_cast<size_t>(r) + 1];
      double total = 0, value = 0;
      for (int64_t p = p0; p < p1; ++p) {
        total += b.values[static_cast<size_t>(p)];
        if (b.indices[static_cast<size_t>(p)] == col) value = b.values[static_cast<size_t>(p)];
      }
      // scanpy's normalize_total(target_sum=1e4) + log1p, as `uce de` uses.
      out[static_cast<size_t>(b.row0 + r)] = total > 0 ? static_cast<float>(std::log1p(value / total * 1e4)) : 0.0f;
    }
    if (!ctx.report(stream.rowsDone(), n, "reading " + gene.trimmed())) ctx.checkCancel();
  }
  return out;
}

}  // namespace uce::gui
