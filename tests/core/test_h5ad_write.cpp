// H5adWriter / ResultsWriter: files anndata 0.8 reads back with equal values, untouched
// inputs, no leftovers after errors, and no damaged output when the writer is killed.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QTemporaryDir>
#include <QtTest>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <thread>

#include "test_support.h"
#include "uce/core/dataset.h"
#include "uce/core/error.h"
#include "uce/core/h5ad_writer.h"

using namespace uce;

namespace {

constexpr int kCells = 250;
constexpr int kGenes = 37;

// X[r, c] = (r + c) % 9 + 1 where (7r + 3c) % 5 == 0, else 0. The python checks use the same rule.
CsrBlock blockOf(int64_t row0, int64_t rows) {
  CsrBlock b;
  b.clear(row0, kGenes);
  for (int64_t r = row0; r < row0 + rows; ++r) {
    std::vector<int32_t> cols;
    std::vector<float> vals;
    for (int32_t c = kGenes - 1; c >= 0; --c)  // unsorted on purpose
      if ((r * 7 + c * 3) % 5 == 0) {
        cols.push_back(c);
        vals.push_back(static_cast<float>((r + c) % 9 + 1));
      }
    b.appendRow(cols.data(), vals.data(), static_cast<int64_t>(cols.size()));
  }
  return b;
}

DataFrame makeObs() {
  DataFrame obs;
  for (int i = 0; i < kCells; ++i) obs.index.push_back("cell" + std::to_string(i));
  Column cluster;
  cluster.name = "cluster";
  cluster.kind = ColumnKind::Categorical;
  cluster.categories = {"B", "NK", "T"};
  Column many;
  many.name = "many";
  many.kind = ColumnKind::Categorical;
  many.ordered = true;
  for (int k = 0; k < 200; ++k) many.categories.push_back("k" + std::to_string(k));
  std::vector<double> score;
  std::vector<int64_t> count, nMaybe;
  std::vector<uint8_t> good, bMaybe, nMissing, bMissing;
  std::vector<std::string> label;
  for (int i = 0; i < kCells; ++i) {
    cluster.codes.push_back(i % 10 == 4 ? -1 : i % 3);
    many.codes.push_back(i % 200);
    score.push_back(i % 7 == 0 ? std::numeric_limits<double>::quiet_NaN() : i * 0.5);
    count.push_back(static_cast<int64_t>(i) * i - 100);
    good.push_back(i % 2 == 0);
    label.push_back(i % 11 == 0 ? "Zelle-\xc3\xa9-" + std::to_string(i) : "L" + std::to_string(i));
    nMaybe.push_back(i * 3);
    nMissing.push_back(i % 5 == 0);
    bMaybe.push_back(i % 3 == 0);
    bMissing.push_back(i % 4 == 1);
  }
  obs.columns.push_back(cluster);
  obs.columns.push_back(many);
  obs.columns.push_back(Column::makeFloats("score", score));
  obs.columns.push_back(Column::makeInts("count", count));
  obs.columns.push_back(Column::makeBools("is_good", good));
  obs.columns.push_back(Column::makeStrings("label", label));
  Column n = Column::makeInts("n_maybe", nMaybe);
  n.missing = nMissing;
  obs.columns.push_back(n);
  Column b = Column::makeBools("b_maybe", bMaybe);
  b.missing = bMissing;
  obs.columns.push_back(b);
  return obs;
}

DataFrame makeVar() {
  DataFrame var;
  var.indexName = "gene_ids";
  for (int j = 0; j < kGenes; ++j) var.index.push_back("G" + std::to_string(j));
  return var;
}

DenseMatrix dense(int64_t rows, int64_t cols, float scale) {
  DenseMatrix m;
  m.rows = rows;
  m.cols = cols;
  for (int64_t i = 0; i < rows * cols; ++i) m.data.push_back(static_cast<float>(i) * scale);
  return m;
}

// Files in a folder (names only), to prove nothing was left behind.
QStringList entries(const QString& dir) {
  return QDir(dir).entryList(QDir::Files | QDir::NoDotAndDotDot, QDir::Name);
}

bool copyFile(const QString& from, const QString& to) {
  QFile::remove(to);
  if (!QFile::copy(from, to)) return false;
  return QFile::setPermissions(to, QFile::ReadOwner | QFile::WriteOwner | QFile::ReadGroup);
}

QString py(const QString& s) { return "r'''" + s + "'''"; }

// Python prelude shared by the checks: compares every dataset/attribute under `a` and `b`
// except the given paths, so "everything else is byte-identical in content" is checked.
const char* kComparePrelude = R"PY(
import sys, warnings
import numpy as np, pandas as pd, scipy.sparse as sp, h5py, anndata as ad
warnings.simplefilter('ignore')
def same_value(x, y):
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        x = np.asarray(x); y = np.asarray(y)
        if x.shape != y.shape or x.dtype != y.dtype: return False
        if x.dtype.kind == 'O':
            return all(same_value(u, v) for u, v in zip(x.ravel(), y.ravel()))
        if x.dtype.kind == 'f': return np.array_equal(x, y, equal_nan=True)
        return np.array_equal(x, y)
    if isinstance(x, h5py.Reference) and isinstance(y, h5py.Reference):
        return True  # compared through the referenced objects themselves
    return type(x) == type(y) and x == y
def compare_files(pa, pb, skip, skip_attrs=()):
    fa, fb = h5py.File(pa, 'r'), h5py.File(pb, 'r')
    problems = []
    def visit(name, obj):
        if any(name == s or name.startswith(s + '/') for s in skip): return
        if name not in fb: problems.append('missing ' + name); return
        other = fb[name]
        for k, v in obj.attrs.items():
            if (name, k) in skip_attrs: continue
            if k not in other.attrs or not same_value(v, other.attrs[k]):
                problems.append('attr %s/%s' % (name, k))
        if set(other.attrs.keys()) != set(obj.attrs.keys()):
            problems.append('attrs added/removed on ' + name)
        if isinstance(obj, h5py.Dataset):
            if not isinstance(other, h5py.Dataset) or obj.dtype != other.dtype or not same_value(obj[()], other[()]):
                problems.append('data ' + name)
    fa.visititems(visit)
    for k, v in fa.attrs.items():
        if not same_value(v, fb.attrs[k]): problems.append('root attr ' + k)
    assert not problems, problems
)PY";

#define PY_OK(script)                                                                  \
  do {                                                                                 \
    QString out_, err_;                                                                \
    int rc_ = uce::test::python(script, &out_, &err_);                                 \
    QVERIFY2(rc_ == 0, qPrintable("python check failed:\n" + out_ + "\n" + err_));     \
    QVERIFY2(out_.contains("CHECKED"), qPrintable("python did not finish:\n" + out_)); \
  } while (0)

#define EXPECT_ERROR(KIND, NEEDLE, STATEMENT)                                                     \
  do {                                                                                            \
    bool thrown_ = false;                                                                         \
    try {                                                                                         \
      STATEMENT;                                                                                  \
    } catch (const uce::Error& e_) {                                                              \
      thrown_ = true;                                                                             \
      QVERIFY2(e_.kind() == (KIND),                                                               \
               qPrintable(QString("wrong kind ") + errorKindName(e_.kind()) + ": " + e_.what())); \
      QVERIFY2(QString::fromStdString(e_.what()).contains(NEEDLE), e_.what());                    \
    }                                                                                             \
    QVERIFY2(thrown_, "no uce::Error thrown");                                                    \
  } while (0)

}  // namespace

class TestH5adWrite : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void newFileReadByAnndata();
  void newFileReadByProjectReader();
  void writerShapeErrorsLeaveNothing();
  void uncommittedWriterLeavesNothing();
  void resultsOnPbmcSmall();
  void resultsInPlace();
  void resultsOnAnndata07Archive();
  void resultsErrors();
  void killedWriterNeverDamagesOutput();
};

// The full example file: X in four blocks (one empty), every obs column kind, var, obsm, uns.
static void writeFullFile(const QString& path) {
  H5adWriter w(path.toStdString(), kGenes);
  const int64_t sizes[] = {100, 0, 73, 77};
  int64_t row0 = 0;
  for (int64_t n : sizes) {
    w.appendRows(blockOf(row0, n));
    row0 += n;
    QCOMPARE(w.rowsWritten(), row0);
  }
  w.setObs(makeObs());
  w.setVar(makeVar());
  w.setObsm("X_pca", dense(kCells, 5, 0.25f));
  w.setUns("uce/model", UnsValue::str("33-layer"));
  w.setUns("uce/seed", UnsValue::integer(42));
  w.setUns("uce/params/lr", UnsValue::real(1e-3));
  w.setUns("flag", UnsValue::boolean(true));
  w.setUns("uce/seed", UnsValue::integer(7));  // replacing keeps the last value
  QVERIFY(!QFile::exists(path));               // nothing at the target before commit
  w.commit();
}

void TestH5adWrite::newFileReadByAnndata() {
  QTemporaryDir dir;
  const QString path = dir.filePath("new.h5ad");
  writeFullFile(path);
  if (QTest::currentTestFailed()) return;
  QCOMPARE(entries(dir.path()), QStringList{"new.h5ad"});
  PY_OK(QString(kComparePrelude) + "p = " + py(path) + R"PY(
n, g = 250, 37
a = ad.read_h5ad(p)
assert a.shape == (n, g), a.shape
r = np.arange(n)[:, None]; c = np.arange(g)[None, :]
dense = np.where((r * 7 + c * 3) % 5 == 0, (r + c) % 9 + 1, 0).astype(np.float32)
assert sp.isspmatrix_csr(a.X) and a.X.dtype == np.float32, (type(a.X), a.X.dtype)
assert np.array_equal(a.X.toarray(), dense)
assert list(a.obs_names) == ['cell%d' % i for i in range(n)]
assert list(a.var_names) == ['G%d' % j for j in range(g)] and a.var.index.name == 'gene_ids'
assert list(a.var.columns) == []
o = a.obs
assert list(o.columns) == ['cluster', 'many', 'score', 'count', 'is_good', 'label', 'n_maybe', 'b_maybe'], list(o.columns)
i = np.arange(n)
assert isinstance(o['cluster'].dtype, pd.CategoricalDtype) and not o['cluster'].cat.ordered
assert list(o['cluster'].cat.categories) == ['B', 'NK', 'T']
assert np.array_equal(o['cluster'].cat.codes.values, np.where(i % 10 == 4, -1, i % 3))
assert o['many'].cat.ordered and len(o['many'].cat.categories) == 200
assert list(o['many'].astype(str)) == ['k%d' % (k % 200) for k in i]
assert o['score'].dtype == np.float64
assert np.array_equal(o['score'].values, np.where(i % 7 == 0, np.nan, i * 0.5), equal_nan=True)
assert o['count'].dtype == np.int64 and np.array_equal(o['count'].values, i * i - 100)
assert o['is_good'].dtype == bool and np.array_equal(o['is_good'].values, i % 2 == 0)
assert list(o['label']) == [('Zelle-\u00e9-%d' if k % 11 == 0 else 'L%d') % k for k in i]
assert str(o['n_maybe'].dtype) == 'Int64', o['n_maybe'].dtype
assert np.array_equal(o['n_maybe'].isna().values, i % 5 == 0)
assert np.array_equal(o['n_maybe'][i % 5 != 0].astype(int).values, (i * 3)[i % 5 != 0])
assert str(o['b_maybe'].dtype) == 'boolean', o['b_maybe'].dtype
assert np.array_equal(o['b_maybe'].isna().values, i % 4 == 1)
assert np.array_equal(o['b_maybe'][i % 4 != 1].astype(bool).values, (i % 3 == 0)[i % 4 != 1])
assert a.obsm['X_pca'].dtype == np.float32
assert np.array_equal(a.obsm['X_pca'], (np.arange(n * 5, dtype=np.float32) * 0.25).reshape(n, 5))
assert a.uns['uce']['model'] == '33-layer'
assert a.uns['uce']['seed'] == 7 and a.uns['uce']['params']['lr'] == 1e-3
assert bool(a.uns['flag']) is True
f = h5py.File(p, 'r')
def enc(name):
    o = f[name]
    return (o.attrs['encoding-type'], o.attrs['encoding-version'])
assert enc('/') == ('anndata', '0.1.0')
assert enc('X') == ('csr_matrix', '0.1.0') and list(f['X'].attrs['shape']) == [n, g]
assert f['X/data'].dtype == np.float32 and f['X/indices'].dtype == np.int32 and f['X/indptr'].dtype == np.int64
assert f['X/data'].chunks is not None and f['X/data'].compression is None
assert enc('obs') == ('dataframe', '0.2.0') and f['obs'].attrs['_index'] == '_index'
assert enc('var') == ('dataframe', '0.2.0') and f['var'].attrs['_index'] == 'gene_ids'
assert enc('obs/_index') == ('string-array', '0.2.0')
assert enc('obs/cluster') == ('categorical', '0.2.0') and f['obs/cluster/codes'].dtype == np.int8
assert f['obs/many/codes'].dtype == np.int16
assert enc('obs/score') == ('array', '0.2.0')
assert enc('obs/n_maybe') == ('nullable-integer', '0.1.0')
assert enc('obs/b_maybe') == ('nullable-boolean', '0.1.0')
for k in ['obsm', 'varm', 'obsp', 'varp', 'layers', 'uns', 'uns/uce', 'uns/uce/params']:
    assert enc(k) == ('dict', '0.1.0'), k
assert enc('uns/uce/model') == ('string', '0.2.0') and enc('uns/uce/seed') == ('numeric-scalar', '0.2.0')
print('CHECKED')
)PY");
}

// The project's own reader sees the same file (anndata above is the oracle).
void TestH5adWrite::newFileReadByProjectReader() {
  QTemporaryDir dir;
  const QString path = dir.filePath("new.h5ad");
  writeFullFile(path);
  if (QTest::currentTestFailed()) return;
  std::unique_ptr<Dataset> ds = openDataset(path.toStdString());
  QCOMPARE(ds->format(), std::string("h5ad"));
  QCOMPARE(ds->cells(), int64_t{kCells});
  QCOMPARE(ds->var().rows(), size_t{kGenes});
  QCOMPARE(ds->var().index[3], std::string("G3"));
  CsrBlock all = ds->readRows("X", 0, kCells), expected = blockOf(0, kCells);
  QCOMPARE(all.indptr, expected.indptr);
  for (int64_t r = 0; r < kCells; ++r) {  // compare rows as sorted (gene, value) pairs
    std::map<int32_t, float> a, b;
    for (int64_t k = all.indptr[r]; k < all.indptr[r + 1]; ++k) a[all.indices[k]] = all.values[k];
    for (int64_t k = expected.indptr[r]; k < expected.indptr[r + 1]; ++k)
      b[expected.indices[k]] = expected.values[k];
    QVERIFY2(a == b, qPrintable(QString("row %1 differs").arg(r)));
  }
  const DataFrame& obs = ds->obs();
  const DataFrame want = makeObs();
  QCOMPARE(obs.index, want.index);
  for (const auto& c : want.columns) {
    const Column* got = obs.find(c.name);
    QVERIFY2(got, c.name.c_str());
    QCOMPARE(int(got->kind), int(c.kind));
    for (size_t i = 0; i < c.size(); ++i) QCOMPARE(got->valueAsString(i), c.valueAsString(i));
  }
  DenseMatrix pca = ds->readObsm("X_pca");
  QCOMPARE(pca.data, dense(kCells, 5, 0.25f).data);
  auto uns = ds->uns();
  QCOMPARE(uns.at("uce/model").s, std::string("33-layer"));
  QCOMPARE(uns.at("uce/seed").i, int64_t{7});
}

void TestH5adWrite::writerShapeErrorsLeaveNothing() {
  QTemporaryDir dir;
  const std::string path = dir.filePath("bad.h5ad").toStdString();
  {
    H5adWriter w(path, kGenes);
    w.appendRows(blockOf(0, 10));
    DataFrame obs = makeObs();  // 250 rows for 10 cells
    w.setObs(obs);
    EXPECT_ERROR(ErrorKind::Shape, "obs has 250 rows", w.commit());
    QCOMPARE(entries(dir.path()), QStringList{});
  }
  {
    H5adWriter w(path, kGenes);
    w.appendRows(blockOf(0, 10));
    w.setObsm("X_pca", dense(9, 2, 1.f));
    EXPECT_ERROR(ErrorKind::Shape, "obsm['X_pca'] has 9 rows", w.commit());
  }
  {
    H5adWriter w(path, kGenes);
    CsrBlock wrongGenes = blockOf(0, 3);
    wrongGenes.ncols = kGenes + 1;
    EXPECT_ERROR(ErrorKind::Shape, "genes", w.appendRows(wrongGenes));
    DataFrame var = makeVar();
    var.index.pop_back();
    EXPECT_ERROR(ErrorKind::Shape, "var has 36 rows", w.setVar(var));
    CsrBlock badIndex = blockOf(0, 3);
    badIndex.indices[0] = kGenes + 5;
    EXPECT_ERROR(ErrorKind::BadIndex, QString::fromStdString(path), w.appendRows(badIndex));
  }
  QCOMPARE(entries(dir.path()), QStringList{});
  EXPECT_ERROR(ErrorKind::Io, "no/such/folder",
               H5adWriter(dir.filePath("no/such/folder/x.h5ad").toStdString(), 3));
}

void TestH5adWrite::uncommittedWriterLeavesNothing() {
  QTemporaryDir dir;
  const QString path = dir.filePath("x.h5ad");
  {
    H5adWriter w(path.toStdString(), kGenes);
    w.appendRows(blockOf(0, 50));
    QCOMPARE(entries(dir.path()).size(), 1);  // the temporary file
    QVERIFY(entries(dir.path())[0].startsWith("x.h5ad.tmp-"));
  }
  QCOMPARE(entries(dir.path()), QStringList{});
  // Committing over an existing file replaces it whole; a default obs/var index is written.
  uce::test::writeAll(path, "old contents");
  {
    H5adWriter w(path.toStdString(), kGenes);
    w.appendRows(blockOf(0, 4));
    w.commit();
  }
  PY_OK(QString(kComparePrelude) + "a = ad.read_h5ad(" + py(path) + R"PY()
assert a.shape == (4, 37) and list(a.obs_names) == ['0', '1', '2', '3'] and a.var_names[36] == '36'
print('CHECKED')
)PY");
}

void TestH5adWrite::resultsOnPbmcSmall() {
  QTemporaryDir dir;
  const QString in = dir.filePath("pbmc.h5ad"), out = dir.filePath("pbmc_uce.h5ad");
  QVERIFY(QFile::copy(uce::test::sharedData("pbmc_small.h5ad"), in));
  QVERIFY(QFile::setPermissions(in, QFile::ReadOwner | QFile::ReadGroup));  // read-only input
  const QByteArray before = uce::test::readAll(in);
  std::vector<std::string> labels;
  std::vector<double> score;
  {
    ResultsWriter w(in.toStdString(), out.toStdString());
    QCOMPARE(w.cells(), int64_t{80});
    DenseMatrix emb = dense(80, 16, 0.5f);
    w.beginObsm("X_uce", 16);
    const int64_t blocks[][2] = {{50, 30}, {0, 30}, {30, 20}};  // out of order on purpose
    for (const auto& b : blocks) w.writeObsmRows("X_uce", b[0], emb.data.data() + b[0] * 16, b[1]);
    for (int i = 0; i < 80; ++i) {
      labels.push_back("cluster_" + std::to_string(i % 4));
      score.push_back(i / 8.0);
    }
    w.setObsColumn(Column::makeCategorical("uce_cluster", labels));
    w.setObsColumn(Column::makeFloats("uce_score", score));
    w.setObsColumn(
        Column::makeCategorical("groups", std::vector<std::string>(80, "g9")));  // replaces
    w.setUns("uce/model", UnsValue::str("4-layer"));
    w.setUns("uce/n_cells", UnsValue::integer(80));
    w.setUns("uce/timing/seconds", UnsValue::real(1.25));
    QVERIFY(!QFile::exists(out));
    w.commit();
  }
  QCOMPARE(uce::test::readAll(in), before);
  QCOMPARE(entries(dir.path()), (QStringList{"pbmc.h5ad", "pbmc_uce.h5ad"}));
  QVERIFY(QFileInfo(out).permissions() & QFile::WriteOwner);  // the result is the user's to edit
  PY_OK(QString(kComparePrelude) + "pin, pout = " + py(in) + ", " + py(out) + R"PY(
compare_files(pin, pout, skip=['obs/groups'], skip_attrs=[('obs', 'column-order')])
a0, a = ad.read_h5ad(pin), ad.read_h5ad(pout)
assert (a.X != a0.X).nnz == 0 and a.X.dtype == a0.X.dtype
assert np.array_equal(a.obsm['X_tsne'], a0.obsm['X_tsne'])
assert a.obsm['X_uce'].dtype == np.float32 and a.obsm['X_uce'].shape == (80, 16)
assert np.array_equal(a.obsm['X_uce'], (np.arange(80 * 16, dtype=np.float32) * 0.5).reshape(80, 16))
old_cols = [c for c in a0.obs.columns if c != 'groups']
pd.testing.assert_frame_equal(a.obs[old_cols], a0.obs[old_cols])
assert list(a.obs.columns) == list(a0.obs.columns) + ['uce_cluster', 'uce_score']
assert isinstance(a.obs['uce_cluster'].dtype, pd.CategoricalDtype)
assert list(a.obs['uce_cluster'].astype(str)) == ['cluster_%d' % (i % 4) for i in range(80)]
assert np.array_equal(a.obs['uce_score'].values, np.arange(80) / 8.0)
assert list(a.obs['groups'].cat.categories) == ['g9']
assert a.uns['uce']['model'] == '4-layer' and a.uns['uce']['n_cells'] == 80
assert a.uns['uce']['timing']['seconds'] == 1.25
pd.testing.assert_frame_equal(a.var, a0.var)
print('CHECKED')
)PY");
}

void TestH5adWrite::resultsInPlace() {
  QTemporaryDir dir;
  const QString path = dir.filePath("pbmc.h5ad"), orig = dir.filePath("orig.h5ad");
  QVERIFY(copyFile(uce::test::sharedData("pbmc_small.h5ad"), path));
  QVERIFY(copyFile(path, orig));
  {
    ResultsWriter w(path.toStdString(), path.toStdString());
    w.setObsm("X_uce", dense(80, 4, 1.f));
    w.setObsColumn(Column::makeInts("uce_rank", std::vector<int64_t>(80, 3)));
    w.setUns("uce_version", UnsValue::str("0.1"));
    // Until commit the file on disk is the original.
    QCOMPARE(uce::test::readAll(path), uce::test::readAll(orig));
    w.commit();
  }
  QCOMPARE(entries(dir.path()), (QStringList{"orig.h5ad", "pbmc.h5ad"}));
  // In place keeps the file's permissions, even read-only ones (the rename needs only the folder).
  QVERIFY(QFile::setPermissions(path, QFile::ReadOwner | QFile::ReadGroup));
  // A second pass replaces X_uce with another width.
  {
    ResultsWriter w(path.toStdString(), path.toStdString());
    w.setObsm("X_uce", dense(80, 8, 2.f));
    w.commit();
  }
  QCOMPARE(QFileInfo(path).permissions() & (QFile::WriteOwner | QFile::ReadOwner),
           QFileDevice::Permissions(QFile::ReadOwner));
  PY_OK(QString(kComparePrelude) + "po, p = " + py(orig) + ", " + py(path) + R"PY(
compare_files(po, p, skip=[], skip_attrs=[('obs', 'column-order')])
a = ad.read_h5ad(p)
assert np.array_equal(a.obsm['X_uce'], (np.arange(80 * 8, dtype=np.float32) * 2).reshape(80, 8))
assert a.obs['uce_rank'].dtype == np.int64 and (a.obs['uce_rank'] == 3).all()
assert a.obs.columns[-1] == 'uce_rank' and a.uns['uce_version'] == '0.1'
print('CHECKED')
)PY");
}

void TestH5adWrite::resultsOnAnndata07Archive() {
  const QString archive =
      "/usr/lib/python3/dist-packages/anndata/tests/data/archives/v0.7.0/adata.h5ad";
  if (!QFile::exists(archive)) QSKIP("anndata's v0.7.0 archive is not installed");
  QTemporaryDir dir;
  const QString in = dir.filePath("old.h5ad"), out = dir.filePath("old_uce.h5ad");
  QVERIFY(copyFile(archive, in));
  std::vector<std::string> labels;
  {
    ResultsWriter w(in.toStdString(), out.toStdString());
    QCOMPARE(w.cells(), int64_t{30});
    for (int i = 0; i < 30; ++i) labels.push_back(i % 2 ? "odd" : "even");
    Column c = Column::makeCategorical("uce_cluster", labels);
    c.ordered = true;
    w.setObsColumn(c);
    w.setObsColumn(
        Column::makeCategorical("obs_cat", std::vector<std::string>(30, "x")));  // replaces
    w.setObsColumn(Column::makeFloats("uce_score", std::vector<double>(30, 0.5)));
    w.setObsm("X_uce", dense(30, 3, 1.f));
    w.setUns("uce/model", UnsValue::str("4-layer"));
    w.commit();
  }
  PY_OK(QString(kComparePrelude) + "pin, pout = " + py(in) + ", " + py(out) + R"PY(
compare_files(pin, pout, skip=['obs/obs_cat', 'obs/__categories/obs_cat'], skip_attrs=[('obs', 'column-order')])
a0, a = ad.read_h5ad(pin), ad.read_h5ad(pout)
assert h5py.File(pout, 'r')['obs'].attrs['encoding-version'] == '0.1.0'
assert 'uce_cluster' in h5py.File(pout, 'r')['obs/__categories']
c = a.obs['uce_cluster']
assert isinstance(c.dtype, pd.CategoricalDtype) and c.cat.ordered
assert list(c.astype(str)) == ['odd' if i % 2 else 'even' for i in range(30)]
assert list(a.obs['obs_cat'].cat.categories) == ['x']
assert np.array_equal(a.obs['uce_score'].values, np.full(30, 0.5))
keep = ['cat_ordered', 'int64', 'float64', 'uint8']
pd.testing.assert_frame_equal(a.obs[keep], a0.obs[keep])
assert list(a.obs.columns) == list(a0.obs.columns) + ['uce_cluster', 'uce_score']
assert (a.X != a0.X).nnz == 0 and np.array_equal(a.obsm['array'], a0.obsm['array'])
pd.testing.assert_frame_equal(a.var, a0.var)
assert a.raw is not None and (a.raw.X != a0.raw.X).nnz == 0
assert np.array_equal(a.obsm['X_uce'], np.arange(90, dtype=np.float32).reshape(30, 3))
assert a.uns['uce']['model'] == '4-layer'
print('CHECKED')
)PY");
}

void TestH5adWrite::resultsErrors() {
  QTemporaryDir dir;
  const QString in = dir.filePath("in.h5ad"), out = dir.filePath("out.h5ad");
  EXPECT_ERROR(ErrorKind::Io, in, ResultsWriter(in.toStdString(), out.toStdString()));
  uce::test::writeAll(in, "this is not hdf5");
  EXPECT_ERROR(ErrorKind::NotHdf5, in, ResultsWriter(in.toStdString(), out.toStdString()));
  QVERIFY(copyFile(uce::test::sharedData("pbmc_small.h5ad"), in));
  const QByteArray before = uce::test::readAll(in);
  {
    ResultsWriter w(in.toStdString(), out.toStdString());
    EXPECT_ERROR(ErrorKind::Shape, "79 rows", w.setObsm("X_uce", dense(79, 2, 1.f)));
    EXPECT_ERROR(ErrorKind::Shape, out, w.setObsColumn(Column::makeFloats("s", {1.0, 2.0})));
    w.beginObsm("X_big", 3);
    EXPECT_ERROR(ErrorKind::Shape, "outside the 80 cells",
                 w.writeObsmRows("X_big", 70, dense(20, 3, 1.f).data.data(), 20));
  }
  QCOMPARE(entries(dir.path()), QStringList{"in.h5ad"});
  {
    ResultsWriter w(in.toStdString(), out.toStdString());
    w.beginObsm("X_big", 3);
    w.writeObsmRows("X_big", 0, dense(40, 3, 1.f).data.data(), 40);
    EXPECT_ERROR(ErrorKind::Shape, "40 of 80 cells", w.commit());
    QCOMPARE(entries(dir.path()), QStringList{"in.h5ad"});
  }
  QCOMPARE(entries(dir.path()), QStringList{"in.h5ad"});
  QCOMPARE(uce::test::readAll(in), before);
}

// Forks a child that writes slowly and SIGKILLs it once its temporary file has grown.
// Returns false (with a message) when the child finished or failed before being killed.
static bool killMidway(const QString& target, void (*work)(), QString* why) {
  const QByteArray tmpPrefix = (target + ".tmp-").toUtf8();
  pid_t pid = ::fork();
  if (pid == 0) {
    try {
      work();
    } catch (...) {
      ::_exit(3);
    }
    ::_exit(0);
  }
  const QString tmp = QString::fromUtf8(tmpPrefix) + QString::number(pid);
  qint64 startSize = -1;
  for (int i = 0; i < 6000; ++i) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      *why = "writer exited before it could be killed, status " + QString::number(status);
      return false;
    }
    QFileInfo fi(tmp);
    if (fi.exists()) {
      if (startSize < 0) startSize = fi.size();
      if (fi.size() > startSize + (4 << 20)) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
    *why = "writer was not killed";
    return false;
  }
  return true;
}

static std::string gTarget, gInput;

static void slowNewFile() {
  H5adWriter w(gTarget, 20000);
  for (int64_t b = 0; b < 100000; ++b) {
    CsrBlock block;
    block.clear(b * 10, 20000);
    std::vector<int32_t> cols(2000);
    std::vector<float> vals(2000, 1.f);
    for (int i = 0; i < 2000; ++i) cols[static_cast<size_t>(i)] = i * 10;
    for (int r = 0; r < 10; ++r) block.appendRow(cols.data(), vals.data(), 2000);
    w.appendRows(block);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  w.commit();
}

static void slowResults() {
  ResultsWriter w(gInput, gTarget);
  const int64_t cols = 200000;  // 80 x 200000 float32 = 64 MB
  w.beginObsm("X_big", cols);
  std::vector<float> row(static_cast<size_t>(cols), 1.f);
  for (int pass = 0; pass < 1000; ++pass)
    for (int64_t r = 0; r < w.cells(); ++r) {
      w.writeObsmRows("X_big", r, row.data(), 1);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  w.commit();
}

void TestH5adWrite::killedWriterNeverDamagesOutput() {
  QTemporaryDir dir;
  QString why;
  // 1. A new file killed midway: nothing appears at the target.
  const QString fresh = dir.filePath("fresh.h5ad");
  gTarget = fresh.toStdString();
  QVERIFY2(killMidway(fresh, slowNewFile, &why), qPrintable(why));
  QVERIFY(!QFile::exists(fresh));
  // 2. Replacing an existing file: the previous version stays whole.
  const QString prev = dir.filePath("prev.h5ad");
  {
    H5adWriter w(prev.toStdString(), kGenes);
    w.appendRows(blockOf(0, 12));
    w.commit();
  }
  const QByteArray prevBytes = uce::test::readAll(prev);
  gTarget = prev.toStdString();
  QVERIFY2(killMidway(prev, slowNewFile, &why), qPrintable(why));
  QCOMPARE(uce::test::readAll(prev), prevBytes);
  // 3. Results into another file that holds an earlier result; input untouched.
  const QString in = dir.filePath("in.h5ad"), out = dir.filePath("out.h5ad");
  QVERIFY(copyFile(uce::test::sharedData("pbmc_small.h5ad"), in));
  {
    ResultsWriter w(in.toStdString(), out.toStdString());
    w.setUns("run", UnsValue::integer(1));
    w.commit();
  }
  const QByteArray inBytes = uce::test::readAll(in), outBytes = uce::test::readAll(out);
  gInput = in.toStdString();
  gTarget = out.toStdString();
  QVERIFY2(killMidway(out, slowResults, &why), qPrintable(why));
  QCOMPARE(uce::test::readAll(in), inBytes);
  QCOMPARE(uce::test::readAll(out), outBytes);
  // 4. In place: the input stays the original.
  gTarget = in.toStdString();
  QVERIFY2(killMidway(in, slowResults, &why), qPrintable(why));
  QCOMPARE(uce::test::readAll(in), inBytes);
  // The survivors are readable by anndata.
  PY_OK(QString(kComparePrelude) + "ad.read_h5ad(" + py(in) + "); b = ad.read_h5ad(" + py(out) +
        ")\nassert b.uns['run'] == 1 and ad.read_h5ad(" + py(prev) +
        ").shape == (12, 37)\nprint('CHECKED')\n");
}

QTEST_GUILESS_MAIN(TestH5adWrite)
#include "test_h5ad_write.moc"
