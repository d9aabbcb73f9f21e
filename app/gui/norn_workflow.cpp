#include "norn_workflow.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <set>

#include "uce/core/analysis/de.h"
#include "uce/core/dataset.h"
#include "uce/core/error.h"
#include "uce/core/inspect.h"
#include "uce/core/sparse.h"

namespace uce::gui {
namespace {

using uce::analysis::ClassifierFile;

std::vector<std::string> labelsOf(const Column& c) {
  std::vector<std::string> out(c.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = c.valueAsString(i);
  return out;
}

bool rowFinite(const float* r, int64_t n) {
  for (int64_t j = 0; j < n; ++j)
    if (!std::isfinite(r[j])) return false;
  return true;
}

std::string lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// Column index of a gene in `var`: exact, then case-insensitive, in the guessed symbol column
// and then in var_names. -1 when absent.
int64_t findGene(const DataFrame& var, const std::string& gene) {
  std::vector<const std::vector<std::string>*> lists;
  std::vector<std::string> symbols;
  const GeneColumnGuess g = guessGeneColumn(var);
  if (!g.column.empty())
    if (const Column* c = var.find(g.column)) {
      symbols = labelsOf(*c);
      lists.push_back(&symbols);
    }
  lists.push_back(&var.index);
  for (const auto* names : lists)
    for (size_t j = 0; j < names->size(); ++j)
      if ((*names)[j] == gene) return static_cast<int64_t>(j);
  const std::string lg = lower(gene);
  for (const auto* names : lists)
    for (size_t j = 0; j < names->size(); ++j)
      if (lower((*names)[j]) == lg) return static_cast<int64_t>(j);
  return -1;
}

// Normalised counts (count / library size * 1e4) of `genes` for every cell of the file:
// [gene][cell]; an absent gene gets an empty vector.
struct Expression {
  std::vector<std::vector<double>> norm;
  std::string countsKey;
};
Expression readExpression(const std::string& path, const std::vector<std::string>& genes, int64_t expectCells,
                          JobContext& ctx, const QString& stage) {
  auto ds = openDataset(path);
  if (ds->cells() != expectCells)
    fail(ErrorKind::Format, path,
         "has " + std::to_string(ds->cells()) + " cells but the open dataset has " + std::to_string(expectCells) +
             ": reopen the file");
  const CountsChoice counts = chooseCountsMatrix(*ds);
  if (counts.key.empty())
    fail(ErrorKind::NotCounts, path, "no matrix holds raw counts (" + counts.reason + "); marker values need counts");
  const DataFrame& var = ds->varFor(counts.key);
  std::vector<int64_t> col(genes.size());
  std::map<int64_t, size_t> slot;  // column -> first gene slot
  for (size_t g = 0; g < genes.size(); ++g) {
    col[g] = findGene(var, genes[g]);
    if (col[g] >= 0 && !slot.count(col[g])) slot[col[g]] = g;
  }
  Expression e;
  e.countsKey = counts.key;
  e.norm.resize(genes.size());
  for (size_t g = 0; g < genes.size(); ++g)
    if (col[g] >= 0) e.norm[g].assign(static_cast<size_t>(expectCells), 0.0);
  const int64_t n = ds->cells(), block = 4096;
  std::vector<double> raw(genes.size());
  CsrBlock b;
  for (int64_t r0 = 0; r0 < n; r0 += block) {
    ctx.report(r0, n, stage);
    ctx.checkCancel();
    ds->readRowsInto(counts.key, r0, std::min(block, n - r0), b);
    for (int64_t i = 0; i < b.rows(); ++i) {
      double lib = 0;
      std::fill(raw.begin(), raw.end(), 0.0);
      for (int64_t k = b.indptr[static_cast<size_t>(i)]; k < b.indptr[static_cast<size_t>(i) + 1]; ++k) {
        const double v = b.values[static_cast<size_t>(k)];
        if (v < 0) fail(ErrorKind::NegativeValue, path, "matrix '" + counts.key + "' has negative values: not counts");
        lib += v;
        auto it = slot.find(b.indices[static_cast<size_t>(k)]);
        if (it != slot.end()) raw[it->second] = v;
      }
      const size_t cell = static_cast<size_t>(r0 + i);
      for (size_t g = 0; g < genes.size(); ++g) {
        if (col[g] < 0) continue;
        const double v = raw[slot[col[g]]];
        e.norm[g][cell] = lib > 0 ? v / lib * 1e4 : 0.0;
      }
    }
  }
  ctx.report(n, n, stage);
  return e;
}

double median(std::vector<double> v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  const size_t h = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<long>(h), v.end());
  const double hi = v[h];
  if (v.size() % 2) return hi;
  return 0.5 * (hi + *std::max_element(v.begin(), v.begin() + static_cast<long>(h)));
}

double mean(const std::vector<double>& v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

QString q(const std::string& s) { return QString::fromStdString(s); }

}  // namespace

QString confidenceBin(double p) {
  if (!std::isfinite(p)) return "not embedded";
  if (p >= 0.9) return "0.9-1.0";
  if (p >= 0.7) return "0.7-0.9";
  if (p >= 0.5) return "0.5-0.7";
  return "below 0.5";
}

qint64 NornPrediction::count(const QString& label) const {
  const int c = label == "unassigned" ? static_cast<int>(labels.size()) : static_cast<int>(labels.indexOf(label));
  if (c < 0) return 0;
  return static_cast<qint64>(std::count(code.begin(), code.end(), c));
}

qint64 ConfusionMatrix::at(const QString& t, const QString& p) const {
  const int i = static_cast<int>(truth.indexOf(t)), j = static_cast<int>(predicted.indexOf(p));
  return i < 0 || j < 0 ? 0 : counts[static_cast<size_t>(i)][static_cast<size_t>(j)];
}

const GroupTest* GroupComparison::test(const QString& feature, const QString& group) const {
  for (const auto& t : tests)
    if (t.feature == feature && t.group == group) return &t;
  return nullptr;
}

NornWorkflow::NornWorkflow(Workspace* workspace, QObject* parent) : QObject(parent), ws_(workspace) {
  connect(ws_, &Workspace::documentClosed, this, [this](DatasetDoc* d) { predictions_.remove(d); });
}

Job* NornWorkflow::failed(const QString& name, const QString& message) {
  const std::string m = message.toStdString();
  return ws_->jobs()->start(name, [m](JobContext&) { throw Error(ErrorKind::InvalidArgument, "", m); });
}

QString NornWorkflow::positiveClass() const {
  if (!has_) return {};
  if (!classifier_.positive.empty()) return q(classifier_.positive);
  if (!positive_.isEmpty()) return positive_;
  return classifier_.model.labels.empty() ? QString() : q(classifier_.model.labels.front());
}

void NornWorkflow::setPositiveClass(const QString& label) { positive_ = label; }

QString NornWorkflow::predictedColumn() const {
  return has_ ? "predicted_" + q(classifier_.labelColumn) : QString();
}

void NornWorkflow::setClassifier(ClassifierFile c) {
  classifier_ = std::move(c);
  has_ = true;
  positive_.clear();
  predictions_.clear();
  Q_EMIT classifierChanged();
}

Job* NornWorkflow::train(DatasetDoc* ref, const NornTrainSettings& s) {
  if (!ref || !ws_->documents().contains(ref)) return failed("Train classifier", "the reference dataset is not open");
  const QString name = "Train classifier on " + ref->name();
  const Column* col = ref->column(s.labelColumn);
  if (!col)
    return failed(name, ref->name() + " has no obs column '" + s.labelColumn + "': choose the column with the labels");
  auto x = ref->obsm(s.featureKey);
  if (!x)
    return failed(name, ref->name() + " has no obsm['" + s.featureKey + "']: embed the reference first");
  auto labels = std::make_shared<std::vector<std::string>>(labelsOf(*col));
  const std::string base = ref->basePath().toStdString();
  auto out = std::make_shared<ClassifierFile>();
  return ws_->jobs()->start(
      name,
      [=](JobContext& ctx) {
        ctx.report(0, 2, "preparing");
        const std::string pos = s.positive.toStdString();
        if (!pos.empty() && std::find(labels->begin(), labels->end(), pos) == labels->end())
          fail(ErrorKind::InvalidArgument, base,
               "'" + pos + "' is not a value of obs['" + s.labelColumn.toStdString() + "']: choose a class it holds");
        std::vector<std::string> text;
        std::vector<int64_t> rows;
        for (int64_t i = 0; i < x->rows && i < static_cast<int64_t>(labels->size()); ++i) {
          std::string v = (*labels)[static_cast<size_t>(i)];
          if (v.empty() || !rowFinite(x->data.data() + i * x->cols, x->cols)) continue;
          if (!pos.empty()) v = v == pos ? pos : "rest";
          text.push_back(std::move(v));
          rows.push_back(i);
        }
        std::vector<std::string> classes = text;
        std::sort(classes.begin(), classes.end());
        classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
        if (classes.size() < 2)
          fail(ErrorKind::InvalidArgument, base,
               "obs['" + s.labelColumn.toStdString() + "'] holds fewer than two classes among the labelled, embedded "
               "cells: a classifier needs at least two");
        std::map<std::string, int32_t> index;
        for (size_t c = 0; c < classes.size(); ++c) index[classes[c]] = static_cast<int32_t>(c);
        std::vector<int32_t> y(rows.size());
        std::vector<float> X(rows.size() * static_cast<size_t>(x->cols));
        for (size_t i = 0; i < rows.size(); ++i) {
          y[i] = index[text[i]];
          std::copy(x->data.begin() + rows[i] * x->cols, x->data.begin() + (rows[i] + 1) * x->cols,
                    X.begin() + static_cast<long>(i * static_cast<size_t>(x->cols)));
        }
        const analysis::MatrixView xv{X.data(), static_cast<int64_t>(rows.size()), x->cols};
        ClassifierFile& c = *out;
        c.labelColumn = s.labelColumn.toStdString();
        c.positive = pos;
        c.featureKey = s.featureKey.toStdString();
        const auto uns = openDataset(base)->uns();
        c.embeddingModel = analysis::embeddingIdentity(uns, c.featureKey, x->cols);
        c.embeddingModelName = analysis::embeddingModelName(uns, c.embeddingModel);
        c.trainingFile = base;
        c.trainingCells = xv.n;
        c.options.C = s.C;
        c.options.balanced = s.balanced;
        ctx.checkCancel();
        if (s.folds >= 2) {
          ctx.report(0, 2, "cross-validating");
          c.cv = analysis::crossValidate(xv, y, classes, s.folds, s.seed, c.options);
        }
        ctx.checkCancel();
        ctx.report(1, 2, "fitting");
        c.model = analysis::fitLogistic(xv, y, classes, c.options, &c.fit);
        ctx.report(2, 2, "done");
      },
      [this, out] { setClassifier(*out); });
}

Job* NornWorkflow::apply(DatasetDoc* target, double minProb) {
  if (!has_) return failed("Apply classifier", "train or load a classifier first");
  if (!target || !ws_->documents().contains(target)) return failed("Apply classifier", "the dataset is not open");
  const QString name = "Apply classifier to " + target->name();
  if (!(minProb >= 0 && minProb <= 1)) return failed(name, "the minimum probability must be between 0 and 1");
  auto x = target->obsm(q(classifier_.featureKey));
  if (!x)
    return failed(name, target->name() + " has no obsm['" + q(classifier_.featureKey) +
                            "']: embed it with the same model as the reference first");
  const ClassifierFile c = classifier_;
  const std::string base = target->basePath().toStdString();
  auto pred = std::make_shared<NornPrediction>();
  QPointer<DatasetDoc> doc(target);
  return ws_->jobs()->start(
      name,
      [=](JobContext& ctx) {
        ctx.report(0, x->rows, "checking the embedding model");
        const auto uns = openDataset(base)->uns();
        const std::string id = analysis::embeddingIdentity(uns, c.featureKey, x->cols);
        if (id != c.embeddingModel)
          fail(ErrorKind::InvalidArgument, base,
               "was embedded by " + analysis::embeddingModelName(uns, id) + ", but the classifier was trained on "
               "embeddings of " + c.embeddingModelName + ": embed this dataset with that model first");
        if (x->cols != c.model.dim)
          fail(ErrorKind::InvalidArgument, base,
               "obsm['" + c.featureKey + "'] has " + std::to_string(x->cols) + " columns; the classifier expects " +
                   std::to_string(c.model.dim));
        ctx.report(0, x->rows, "predicting");
        const analysis::MatrixView xv{x->data.data(), x->rows, x->cols};
        const analysis::Predictions p = analysis::predict(c.model, xv);
        const int32_t unassigned = static_cast<int32_t>(c.model.labels.size());
        pred->column = q("predicted_" + c.labelColumn);
        pred->confidenceColumn = pred->column + "_confidence";
        for (const auto& l : c.model.labels) pred->labels << q(l);
        pred->minProb = minProb;
        pred->code.resize(static_cast<size_t>(x->rows));
        pred->probability.resize(static_cast<size_t>(x->rows));
        for (int64_t i = 0; i < x->rows; ++i) {
          const size_t k = static_cast<size_t>(i);
          const bool ok = rowFinite(xv.row(i), xv.dim);
          pred->probability[k] = ok ? p.probability[k] : std::numeric_limits<double>::quiet_NaN();
          pred->code[k] = ok && p.probability[k] >= minProb ? p.label[k] : unassigned;
          if (pred->code[k] == unassigned) ++pred->unassigned;
        }
        ctx.report(x->rows, x->rows, "done");
      },
      [this, doc, pred] {
        if (!doc || !ws_->documents().contains(doc.data())) return;
        const int nLabels = static_cast<int>(pred->labels.size());
        std::vector<std::vector<int64_t>> rows(static_cast<size_t>(nLabels) + 1);
        std::map<QString, std::vector<int64_t>> bins;
        for (size_t i = 0; i < pred->code.size(); ++i) {
          rows[static_cast<size_t>(pred->code[i])].push_back(static_cast<int64_t>(i));
          bins[confidenceBin(pred->probability[i])].push_back(static_cast<int64_t>(i));
        }
        QString err;
        for (int l = 0; l <= nLabels; ++l) {
          if (rows[static_cast<size_t>(l)].empty()) continue;
          const QString label = l == nLabels ? QString("unassigned") : pred->labels[l];
          if (!doc->labelCells(pred->column, label, rows[static_cast<size_t>(l)], &err))
            fail(ErrorKind::InvalidArgument, doc->path().toStdString(), err.toStdString());
        }
        for (const auto& [bin, r] : bins)
          if (!doc->labelCells(pred->confidenceColumn, bin, r, &err))
            fail(ErrorKind::InvalidArgument, doc->path().toStdString(), err.toStdString());
        // The probability itself, for a continuous colouring of the map.
        if (!doc->setNumericColumn(pred->column + "_probability", pred->probability, &err))
          fail(ErrorKind::InvalidArgument, doc->path().toStdString(), err.toStdString());
        predictions_[doc.data()] = *pred;
        Q_EMIT applied(doc.data());
      });
}

const NornPrediction* NornWorkflow::prediction(DatasetDoc* doc) const {
  auto it = predictions_.constFind(doc);
  return it == predictions_.constEnd() ? nullptr : &it.value();
}

bool NornWorkflow::confusion(DatasetDoc* doc, const QString& truthColumn, ConfusionMatrix* out, QString* error) const {
  auto setError = [&](const QString& m) { if (error) *error = m; return false; };
  const NornPrediction* p = prediction(doc);
  if (!p) return setError("apply the classifier to this dataset first");
  const Column* col = doc->column(truthColumn);
  if (!col) return setError(doc->name() + " has no obs column '" + truthColumn + "'");
  const std::vector<std::string> truth = labelsOf(*col);
  if (truth.size() != p->code.size()) return setError("the predictions no longer match the dataset: apply again");
  ConfusionMatrix m;
  m.truthColumn = truthColumn;
  m.predictedColumn = p->column;
  std::set<std::string> seen(truth.begin(), truth.end());
  seen.erase("");
  if (col->kind == ColumnKind::Categorical) {
    for (const auto& c : col->categories)
      if (seen.count(c)) m.truth << q(c);
  } else {
    for (const auto& c : seen) m.truth << q(c);
  }
  m.predicted = p->labels;
  m.predicted << "unassigned";
  m.counts.assign(static_cast<size_t>(m.truth.size()), std::vector<qint64>(static_cast<size_t>(m.predicted.size()), 0));
  std::map<std::string, size_t> row;
  for (int i = 0; i < m.truth.size(); ++i) row[m.truth[i].toStdString()] = static_cast<size_t>(i);
  for (size_t i = 0; i < truth.size(); ++i) {
    auto it = row.find(truth[i]);
    if (it == row.end()) continue;
    ++m.counts[it->second][static_cast<size_t>(p->code[i])];
    ++m.total;
  }
  *out = std::move(m);
  return true;
}

Job* NornWorkflow::markerPanel(const QVector<DatasetDoc*>& docs, const QStringList& genes) {
  if (!has_) return failed("Marker panel", "train or load a classifier first");
  if (genes.isEmpty()) return failed("Marker panel", "choose at least one marker gene");
  const QString positive = positiveClass();
  struct Input {
    QString label;
    std::string base;
    int64_t cells = 0;
    std::vector<uint8_t> in;  // [cells] 1 = predicted positive
  };
  auto inputs = std::make_shared<std::vector<Input>>();
  for (DatasetDoc* d : docs) {
    const NornPrediction* p = prediction(d);
    if (!p) return failed("Marker panel", "apply the classifier to " + (d ? d->name() : QString("every dataset")) + " first");
    Input in;
    in.label = d->name();
    if (const Column* t = d->column("tissue")) {
      std::set<std::string> v;
      for (size_t i = 0; i < t->size(); ++i) v.insert(t->valueAsString(i));
      if (v.size() == 1 && !v.begin()->empty()) in.label += " (" + q(*v.begin()) + ")";
    }
    in.base = d->basePath().toStdString();
    in.cells = d->cells();
    const int pc = static_cast<int>(p->labels.indexOf(positive));
    in.in.resize(p->code.size());
    for (size_t i = 0; i < p->code.size(); ++i) in.in[i] = p->code[i] == pc;
    inputs->push_back(std::move(in));
  }
  std::vector<std::string> g;
  for (const auto& s : genes) g.push_back(s.toStdString());
  auto out = std::make_shared<MarkerPanel>();
  return ws_->jobs()->start(
      "Marker panel",
      [=](JobContext& ctx) {
        MarkerPanel& m = *out;
        m.positive = positive;
        m.genes = genes;
        m.log2fc.assign(g.size(), std::vector<double>(inputs->size(), std::numeric_limits<double>::quiet_NaN()));
        std::set<QString> missing;
        for (size_t d = 0; d < inputs->size(); ++d) {
          const Input& in = (*inputs)[d];
          m.datasets << in.label;
          const Expression e = readExpression(in.base, g, in.cells, ctx, "reading " + in.label);
          const qint64 nIn = std::count(in.in.begin(), in.in.end(), uint8_t(1));
          m.cellsIn.push_back(nIn);
          m.cellsOut.push_back(static_cast<qint64>(in.in.size()) - nIn);
          if (nIn == 0 || nIn == static_cast<qint64>(in.in.size())) {
            m.notes << in.label + ": no cells predicted as '" + positive + "' (or only such cells)";
            continue;
          }
          for (size_t k = 0; k < g.size(); ++k) {
            if (e.norm[k].empty()) { missing.insert(genes[static_cast<int>(k)]); continue; }
            double sIn = 0, sOut = 0;
            for (size_t i = 0; i < in.in.size(); ++i) (in.in[i] ? sIn : sOut) += e.norm[k][i];
            const double meanIn = sIn / static_cast<double>(nIn);
            const double meanOut = sOut / static_cast<double>(m.cellsOut.back());
            m.log2fc[k][d] = std::log2((meanIn + 1e-9) / (meanOut + 1e-9));
          }
        }
        for (const auto& s : missing) m.notes << "gene " + s + " is not in every dataset";
      },
      [this, out] {
        panel_ = *out;
        Q_EMIT markerPanelReady();
      });
}

Job* NornWorkflow::compareGroups(DatasetDoc* doc, const QString& conditionColumn, const QString& reference,
                                 const QStringList& genes, const QVector<QPair<QString, QString>>& ratios,
                                 bool predictedOnly) {
  const QString name = "Compare groups";
  if (!doc || !ws_->documents().contains(doc)) return failed(name, "the dataset is not open");
  if (genes.isEmpty() && ratios.isEmpty()) return failed(name, "choose at least one gene or gene ratio");
  const Column* col = doc->column(conditionColumn);
  if (!col) return failed(name, doc->name() + " has no obs column '" + conditionColumn + "'");
  auto cond = std::make_shared<std::vector<std::string>>(labelsOf(*col));
  QString filter;
  if (predictedOnly) {
    const NornPrediction* p = prediction(doc);
    if (!p) return failed(name, "apply the classifier to " + doc->name() + " first (or compare all cells)");
    const int pc = static_cast<int>(p->labels.indexOf(positiveClass()));
    for (size_t i = 0; i < cond->size(); ++i)
      if (p->code[i] != pc) (*cond)[i].clear();
    filter = "predicted " + positiveClass();
  }
  std::vector<std::string> g;
  QStringList features;
  for (const auto& s : genes) { g.push_back(s.toStdString()); features << s; }
  for (const auto& r : ratios) {
    g.push_back(r.first.toStdString());
    g.push_back(r.second.toStdString());
    features << r.first + ":" + r.second;
  }
  const std::string base = doc->basePath().toStdString();
  const int64_t cells = doc->cells();
  const int nGenes = static_cast<int>(genes.size());
  auto out = std::make_shared<GroupComparison>();
  out->dataset = doc->name();
  out->conditionColumn = conditionColumn;
  out->cellFilter = filter;
  out->features = features;
  return ws_->jobs()->start(
      name + " of " + doc->name(),
      [=](JobContext& ctx) {
        GroupComparison& r = *out;
        std::set<std::string> present(cond->begin(), cond->end());
        present.erase("");
        if (present.size() < 2)
          fail(ErrorKind::InvalidArgument, base,
               "obs['" + conditionColumn.toStdString() + "'] has fewer than two groups among the compared cells");
        std::string ref = reference.toStdString();
        if (ref.empty()) ref = *present.begin();
        if (!present.count(ref))
          fail(ErrorKind::InvalidArgument, base, "'" + ref + "' is not a group of obs['" + conditionColumn.toStdString() +
                                                     "'] among the compared cells");
        r.reference = q(ref);
        std::vector<std::string> groups{ref};
        for (const auto& p : present)
          if (p != ref) groups.push_back(p);
        for (const auto& s : groups) r.groups << q(s);
        std::map<std::string, size_t> gi;
        for (size_t i = 0; i < groups.size(); ++i) gi[groups[i]] = i;

        const Expression e = readExpression(base, g, cells, ctx, "reading counts");
        for (size_t k = 0; k < g.size(); ++k)
          if (e.norm[k].empty()) fail(ErrorKind::InvalidArgument, base, "gene '" + g[k] + "' is not in the dataset");
        const int nFeatures = static_cast<int>(features.size());
        r.values.assign(static_cast<size_t>(nFeatures), std::vector<std::vector<double>>(groups.size()));
        std::vector<double> pvals;
        for (int f = 0; f < nFeatures; ++f) {
          // rank: values ranked by the test (normalised counts, or the ratio itself): the exact
          // ranks of the plotted log values (log1p / log2 are increasing), see de.h.
          std::vector<std::vector<double>> rank(groups.size());
          for (int64_t i = 0; i < cells; ++i) {
            const std::string& c = (*cond)[static_cast<size_t>(i)];
            if (c.empty()) continue;
            const size_t grp = gi[c];
            double rv, pv;
            if (f < nGenes) {
              rv = e.norm[static_cast<size_t>(f)][static_cast<size_t>(i)];
              pv = std::log1p(rv);
            } else {
              const size_t a = static_cast<size_t>(nGenes + 2 * (f - nGenes));
              rv = (e.norm[a][static_cast<size_t>(i)] + 1) / (e.norm[a + 1][static_cast<size_t>(i)] + 1);
              pv = std::log2(rv);
            }
            rank[grp].push_back(rv);
            r.values[static_cast<size_t>(f)][grp].push_back(pv);
          }
          const auto& vals = r.values[static_cast<size_t>(f)];
          for (size_t grp = 1; grp < groups.size(); ++grp) {
            GroupTest t;
            t.feature = features[f];
            t.group = q(groups[grp]);
            t.reference = q(ref);
            t.nGroup = static_cast<qint64>(vals[grp].size());
            t.nReference = static_cast<qint64>(vals[0].size());
            t.medianGroup = median(vals[grp]);
            t.medianReference = median(vals[0]);
            t.meanGroup = mean(vals[grp]);
            t.meanReference = mean(vals[0]);
            if (t.nGroup >= 1 && t.nReference >= 1) {
              const auto tr = analysis::wilcoxonRankSum(rank[grp].data(), t.nGroup, rank[0].data(), t.nReference);
              t.statistic = tr.statistic;
              t.pval = tr.pval;
            }
            pvals.push_back(t.pval);
            r.tests.push_back(t);
          }
        }
        const std::vector<double> adj = analysis::benjaminiHochberg(pvals);
        for (int i = 0; i < r.tests.size(); ++i) r.tests[i].pvalAdj = adj[static_cast<size_t>(i)];
      },
      [this, out] {
        comparison_ = *out;
        Q_EMIT groupComparisonReady();
      });
}

bool NornWorkflow::saveClassifier(const QString& path, QString* error) const {
  if (!has_) {
    if (error) *error = "there is no classifier to save: train or load one first";
    return false;
  }
  try {
    analysis::saveClassifier(classifier_, path.toStdString());
    return true;
  } catch (const std::exception& e) {
    if (error) *error = QString::fromUtf8(e.what());
    return false;
  }
}

bool NornWorkflow::loadClassifier(const QString& path, QString* error) {
  try {
    setClassifier(analysis::loadClassifier(path.toStdString()));
    return true;
  } catch (const std::exception& e) {
    if (error) *error = QString::fromUtf8(e.what());
    return false;
  }
}

}  // namespace uce::gui
