// Classifier transfer (uce classify train/apply): agreement with scikit-learn's
// LogisticRegression(multinomial), the refusal of another model's embeddings, the unassigned
// threshold, and errors on bad input.
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>

#include "test_support.h"
#include "uce/core/analysis/classifier.h"
#include "uce/core/error.h"

using uce::test::cli;
using uce::test::python;

namespace {

// Reference, query and a query "embedded by another model": Gaussian classes in 24 dimensions
// with overlap (accuracy ~0.9, not 1), one rare class, some unlabelled and some unembedded cells.
const char* kMakeData = R"(
import anndata as ad, numpy as np, pandas as pd, sys
out = sys.argv[1] if len(sys.argv) > 1 else '%1'
rng = np.random.default_rng(7)
d = 24
names = ['B cell', 'Norn cell', 'T cell', 'fibroblast', 'podocyte']
share = np.array([0.3, 0.05, 0.3, 0.2, 0.15])
centres = rng.normal(0, 1.0, (5, d)) * 0.55
def make(n, seed):
    r = np.random.default_rng(seed)
    y = r.choice(5, size=n, p=share)
    x = (centres[y] + r.normal(0, 1.0, (n, d)) * 0.6 + 0.3).astype(np.float32)
    return x, y
def write(path, x, y, sha, model, label_missing=0, nan_rows=0):
    lab = pd.Categorical([names[i] for i in y], categories=names)
    if label_missing:
        lab = lab.copy(); lab[:label_missing] = np.nan
    x = x.copy()
    if nan_rows:
        x[-nan_rows:] = np.nan
    obs = pd.DataFrame({'cell_type': lab, 'truth': pd.Categorical([names[i] for i in y]),
                        'tissue': pd.Categorical(['kidney'] * len(y))},
                       index=['c%d' % i for i in range(len(y))])
    a = ad.AnnData(X=np.zeros((len(y), 3), np.float32), obs=obs,
                   var=pd.DataFrame(index=['G1', 'G2', 'G3']))
    a.obsm['X_uce'] = x
    a.uns['uce'] = {'model_sha256': sha, 'model_file': model, 'species': 'human'}
    a.write_h5ad(path)
xr, yr = make(1500, 1)
xq, yq = make(800, 2)
A = 'a' * 64; B = 'b' * 64
write(out + '/ref.h5ad', xr, yr, A, 'model_a.torch', label_missing=6, nan_rows=5)
write(out + '/query.h5ad', xq, yq, A, 'model_a.torch', nan_rows=4)
write(out + '/other.h5ad', xq, yq, B, 'model_b.torch')
a = ad.AnnData(X=np.zeros((10, 3), np.float32), obs=pd.DataFrame({'cell_type': pd.Categorical(['T cell'] * 10)},
               index=['c%d' % i for i in range(10)]), var=pd.DataFrame(index=['G1', 'G2', 'G3']))
a.obsm['X_uce'] = xr[:10]
a.uns['uce'] = {'model_sha256': A, 'model_file': 'model_a.torch'}
a.write_h5ad(out + '/oneclass.h5ad')
a.obsm['X_uce'] = xr[:10, :8]
a.obs['cell_type'] = pd.Categorical(['T cell', 'B cell'] * 5)
a.write_h5ad(out + '/narrow.h5ad')
print('ok')
)";

// Fits scikit-learn on the reference (same cells as uce: labelled and embedded), predicts the
// query, and compares with the uce output at %2. Options: %3 = class_weight, %4 = positive.
const char* kCompare = R"(
import anndata as ad, numpy as np, json, warnings
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
warnings.filterwarnings('ignore')
d = '%1'
ref = ad.read_h5ad(d + '/ref.h5ad'); q = ad.read_h5ad('%2')
cw = %3; pos = %4
x = np.asarray(ref.obsm['X_uce'], np.float64); lab = ref.obs['cell_type']
keep = (~lab.isna().values) & np.isfinite(x).all(1)
x = x[keep]; y = lab.astype(str).values[keep]
def relabel(v): return np.where(v == pos, pos, 'rest') if pos else v
y = relabel(y)
clf = LogisticRegression(C=1.0, multi_class='multinomial', solver='lbfgs', max_iter=20000, tol=1e-10, class_weight=cw)
clf.fit(x, y)
xq = np.asarray(q.obsm['X_uce'], np.float64); ok = np.isfinite(xq).all(1)
truth = relabel(q.obs['truth'].astype(str).values)
pk = clf.predict_proba(xq[ok]); sk_pred = clf.classes_[pk.argmax(1)]; sk_prob = pk.max(1)
col = 'predicted_cell_type'
uce_pred = q.obs[col].astype(str).values; uce_prob = q.obs[col + '_prob'].values
cv = StratifiedKFold(5, shuffle=True, random_state=0)
sk_cv = cross_val_score(LogisticRegression(C=1.0, multi_class='multinomial', max_iter=20000, tol=1e-10, class_weight=cw),
                        x, y, cv=cv).mean()
print(json.dumps({
  'sk_acc': float((sk_pred == truth[ok]).mean()),
  'uce_acc': float((uce_pred[ok] == truth[ok]).mean()),
  'agree': float((uce_pred[ok] == sk_pred).mean()),
  'prob_maxdiff': float(np.abs(uce_prob[ok] - sk_prob).max()),
  'nan_rows_unassigned': bool((uce_pred[~ok] == 'unassigned').all() and np.isnan(uce_prob[~ok]).all()),
  'sk_cv': float(sk_cv),
  'categorical': str(q.obs[col].dtype) == 'category',
  'classes': list(map(str, clf.classes_)),
}))
)";

QJsonObject lastJsonLine(const QString& out) {
  const QStringList lines = out.trimmed().split('\n');
  return QJsonDocument::fromJson(lines.last().toUtf8()).object();
}

QJsonObject readJsonFile(const QString& path) {
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly)) return {};
  return QJsonDocument::fromJson(f.readAll()).object();
}

}  // namespace

class TestClassifier : public QObject {
  Q_OBJECT
  QTemporaryDir tmp_;
  QString dir() const { return tmp_.path(); }

  // Trains, applies with --min-prob 0, compares with scikit-learn; returns python's report.
  QJsonObject trainApplyCompare(const QString& name, const QStringList& trainExtra, const QString& cw,
                                const QString& pos, QJsonObject* model = nullptr) {
    QString out, err;
    const QString m = dir() + "/" + name + ".json", o = dir() + "/" + name + ".h5ad";
    QStringList a{"classify", "train", "--adata", dir() + "/ref.h5ad", "--label", "cell_type", "--out", m};
    a << trainExtra;
    if (cli(a, &out, &err) != 0) { qWarning() << err; return {}; }
    if (cli({"classify", "apply", "--model", m, "--adata", dir() + "/query.h5ad", "--out", o, "--min-prob", "0"},
            &out, &err) != 0) { qWarning() << err; return {}; }
    if (model) *model = readJsonFile(m);
    QString pout, perr;
    if (python(QString(kCompare).arg(dir(), o, cw, pos), &pout, &perr) != 0) { qWarning() << perr; return {}; }
    qInfo().noquote() << name << pout.trimmed();
    return lastJsonLine(pout);
  }

 private Q_SLOTS:
  void initTestCase() {
    QVERIFY(tmp_.isValid());
    QString out, err;
    QVERIFY2(python(QString(kMakeData).arg(dir()), &out, &err) == 0, qPrintable(err));
  }

  void multinomialMatchesSklearn() {
    QJsonObject model;
    QJsonObject r = trainApplyCompare("multi", {"--cv", "5", "--seed", "3"}, "None", "None", &model);
    QVERIFY(!r.isEmpty());
    // Same split (train on ref, test on query): accuracy within 1 point, probabilities close.
    QVERIFY2(std::abs(r["uce_acc"].toDouble() - r["sk_acc"].toDouble()) <= 0.01, qPrintable(QJsonDocument(r).toJson()));
    QVERIFY(r["uce_acc"].toDouble() > 0.7 && r["uce_acc"].toDouble() < 0.99);  // a real, imperfect problem
    QVERIFY(r["prob_maxdiff"].toDouble() < 0.02);
    QVERIFY(r["agree"].toDouble() > 0.99);
    QVERIFY(r["nan_rows_unassigned"].toBool());
    QVERIFY(r["categorical"].toBool());
    // Cross-validation: different shuffles than scikit-learn's, so a looser bound.
    const double cv = model["cross_validation"].toObject()["accuracy"].toDouble();
    QVERIFY2(std::abs(cv - r["sk_cv"].toDouble()) < 0.03, qPrintable(QString::number(cv)));
    QCOMPARE(model["cross_validation"].toObject()["fold_accuracy"].toArray().size(), 5);
    // The file says what it is for.
    QCOMPARE(model["feature_key"].toString(), QString("X_uce"));
    QCOMPARE(model["dim"].toInt(), 24);
    QCOMPARE(model["embedding_model"].toString(), QString(64, 'a'));
    QCOMPARE(model["labels"].toArray().size(), 5);
    QCOMPARE(model["training_cells"].toInt(), 1500 - 6 - 5);
    QVERIFY(model["fit"].toObject()["converged"].toBool());
  }

  void balancedMatchesSklearn() {
    QJsonObject r = trainApplyCompare("balanced", {"--class-weight", "balanced", "--cv", "0"}, "'balanced'", "None");
    QVERIFY(!r.isEmpty());
    QVERIFY2(std::abs(r["uce_acc"].toDouble() - r["sk_acc"].toDouble()) <= 0.01, qPrintable(QJsonDocument(r).toJson()));
    QVERIFY(r["prob_maxdiff"].toDouble() < 0.02);
  }

  void oneVsRestMatchesSklearn() {
    QJsonObject r = trainApplyCompare("norn", {"--positive", "Norn cell", "--cv", "0"}, "None", "'Norn cell'");
    QVERIFY(!r.isEmpty());
    QCOMPARE(r["classes"].toArray().size(), 2);
    QVERIFY2(std::abs(r["uce_acc"].toDouble() - r["sk_acc"].toDouble()) <= 0.01, qPrintable(QJsonDocument(r).toJson()));
    QVERIFY(r["prob_maxdiff"].toDouble() < 0.02);
  }

  void deterministicFileAndThreads() {
    const QString a = dir() + "/det_a.json", b = dir() + "/det_b.json";
    QVERIFY(cli({"classify", "train", "--adata", dir() + "/ref.h5ad", "--label", "cell_type", "--out", a, "--threads", "1"}) == 0);
    QVERIFY(cli({"classify", "train", "--adata", dir() + "/ref.h5ad", "--label", "cell_type", "--out", b, "--threads", "2"}) == 0);
    QCOMPARE(uce::test::readAll(a), uce::test::readAll(b));
    // The file round-trips through the reader.
    const uce::analysis::ClassifierFile c = uce::analysis::loadClassifier(a.toStdString());
    QCOMPARE(c.model.labels.size(), size_t(5));
    QCOMPARE(uce::analysis::classifierToJson(c), uce::test::readAll(a).toStdString());
  }

  void refusesAnotherModelsEmbeddings() {
    const QString m = dir() + "/multi.json";
    QVERIFY(QFile::exists(m));
    QString out, err;
    QVERIFY(cli({"classify", "apply", "--model", m, "--adata", dir() + "/other.h5ad", "--out", dir() + "/x.h5ad"}, &out, &err) != 0);
    QVERIFY2(err.startsWith("error: ") && err.contains("model_b.torch") && err.contains("model_a.torch"), qPrintable(err));
    QVERIFY(!QFile::exists(dir() + "/x.h5ad"));
    // A different embedding width is refused too, naming both widths.
    QVERIFY(cli({"classify", "apply", "--model", m, "--adata", dir() + "/narrow.h5ad", "--out", dir() + "/x.h5ad"}, &out, &err) != 0);
    QVERIFY2(err.contains("8 columns") && err.contains("24-column"), qPrintable(err));
  }

  void unassignedBelowThreshold() {
    const QString m = dir() + "/multi.json", o = dir() + "/thr.h5ad";
    QString out, err;
    QVERIFY2(cli({"classify", "apply", "--model", m, "--adata", dir() + "/query.h5ad", "--out", o, "--min-prob", "0.9"},
                 &out, &err) == 0, qPrintable(err));
    QVERIFY(out.contains("unassigned"));
    QString pout, perr;
    QVERIFY2(python(QString(R"(
import anndata as ad, numpy as np
q = ad.read_h5ad('%1'); p = q.obs['predicted_cell_type'].astype(str).values; pr = q.obs['predicted_cell_type_prob'].values
ok = np.isfinite(pr)
assert ((p[ok] == 'unassigned') == (pr[ok] < 0.9)).all()
assert (p[~ok] == 'unassigned').all() and (~ok).sum() == 4
n = int((p == 'unassigned').sum()); assert 4 < n < len(p) // 2, n
print(n)
)").arg(o), &pout, &perr) == 0, qPrintable(perr));
    QVERIFY(out.contains(QString("%1 unassigned").arg(pout.trimmed())));
    // The input file is untouched.
    QString pout2;
    QVERIFY(python(QString("import anndata as ad; assert 'predicted_cell_type' not in ad.read_h5ad('%1/query.h5ad').obs")
                       .arg(dir()), &pout2, &perr) == 0);
  }

  void badInput() {
    QString out, err;
    const QString m = dir() + "/bad.json";
    // Unknown label column: names the file, the column and what is there.
    QCOMPARE(cli({"classify", "train", "--adata", dir() + "/ref.h5ad", "--label", "celltype", "--out", m}, &out, &err), 2);
    QVERIFY2(err.contains("ref.h5ad") && err.contains("'celltype'") && err.contains("cell_type"), qPrintable(err));
    // One class only.
    QCOMPARE(cli({"classify", "train", "--adata", dir() + "/oneclass.h5ad", "--label", "cell_type", "--out", m}, &out, &err), 2);
    QVERIFY2(err.contains("only one label ('T cell')") && err.contains("two"), qPrintable(err));
    // Unknown positive class.
    QCOMPARE(cli({"classify", "train", "--adata", dir() + "/ref.h5ad", "--label", "cell_type", "--positive", "Norn", "--out", m},
                 &out, &err), 2);
    QVERIFY2(err.contains("'Norn'") && err.contains("Norn cell"), qPrintable(err));
    // No embedding under that key.
    QVERIFY(cli({"classify", "train", "--adata", dir() + "/ref.h5ad", "--label", "cell_type", "--use-rep", "X_pca", "--out", m},
                &out, &err) != 0);
    QVERIFY2(err.contains("X_pca") && err.contains("uce embed"), qPrintable(err));
    QVERIFY(!QFile::exists(m));
    // A file that is not a classifier.
    uce::test::writeAll(m, "{\"format\": \"uce-classifier\", \"version\": 1, \"labels\": [\"a\"");
    QVERIFY(cli({"classify", "apply", "--model", m, "--adata", dir() + "/query.h5ad", "--out", dir() + "/y.h5ad"}, &out, &err) != 0);
    QVERIFY2(err.contains("bad.json") && err.contains("not a valid classifier file"), qPrintable(err));
    QVERIFY(cli({"classify", "apply", "--model", dir() + "/missing.json", "--adata", dir() + "/query.h5ad", "--out",
                 dir() + "/y.h5ad"}, &out, &err) != 0);
    QVERIFY2(err.contains("missing.json"), qPrintable(err));
    QVERIFY(cli({"classify", "apply", "--model", dir() + "/multi.json", "--adata", dir() + "/query.h5ad", "--out",
                 dir() + "/y.h5ad", "--min-prob", "1.5"}, &out, &err) != 0);
    QVERIFY(!QFile::exists(dir() + "/y.h5ad"));
  }

  void libraryRejectsNaNAndSingleClass() {
    std::vector<float> x{0, 1, 1, 0, std::nanf(""), 0};
    const uce::analysis::MatrixView v{x.data(), 3, 2};
    QVERIFY_THROWS_EXCEPTION(uce::Error, uce::analysis::fitLogistic(v, {0, 1, 0}, {"a", "b"}, {}));
    const uce::analysis::MatrixView v2{x.data(), 2, 2};
    QVERIFY_THROWS_EXCEPTION(uce::Error, uce::analysis::fitLogistic(v2, {1, 1}, {"a", "b"}, {}));
  }
};

QTEST_GUILESS_MAIN(TestClassifier)
#include "test_classifier.moc"
