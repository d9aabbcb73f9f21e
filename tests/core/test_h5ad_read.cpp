// The .h5ad reader against anndata 0.8: every value it reads (X in each storage and dtype,
// layers, raw, obs/var columns, obsm/varm, uns) equals what anndata.read_h5ad reports, row
// ranges equal the slices, and broken files give typed errors naming the file, silently.
#include <fcntl.h>
#include <unistd.h>

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <cstdio>
#include <set>

#include "readers.h"
#include "test_support.h"
#include "uce/core/dataset.h"
#include "uce/core/error.h"

using uce::ColumnKind;
using uce::ErrorKind;

namespace {

const char* kArchives = "/usr/lib/python3/dist-packages/anndata/tests/data/archives";

QJsonObject loadJson(const QString& path) {
  return QJsonDocument::fromJson(uce::test::readAll(path)).object();
}

std::string str(const QJsonValue& v) {
  return v.toString().toStdString();
}

// Redirects file descriptor 2 to a temporary file, to check that nothing (e.g. an HDF5 error
// stack) is printed while a broken file is read.
class StderrCapture {
 public:
  StderrCapture() {
    std::fflush(stderr);
    saved_ = dup(2);
    file_ = std::tmpfile();
    dup2(fileno(file_), 2);
  }
  ~StderrCapture() { finish(); }
  std::string finish() {
    if (!file_) return text_;
    std::fflush(stderr);
    dup2(saved_, 2);
    close(saved_);
    std::rewind(file_);
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, file_)) > 0) text_.append(buf, n);
    std::fclose(file_);
    file_ = nullptr;
    return text_;
  }

 private:
  int saved_ = -1;
  std::FILE* file_ = nullptr;
  std::string text_;
};

// Rows [row0, row0 + n) of matrix `key` as a dense row-major [n, cols] array, checking the
// block's own invariants (sorted, unique columns per row).
std::vector<float> denseRows(const uce::Dataset& ds, const std::string& key, int64_t row0,
                             int64_t n, int64_t cols) {
  uce::CsrBlock b = ds.readRows(key, row0, n);
  std::vector<float> out(static_cast<size_t>(n * cols), 0.0f);
  if (b.row0 != row0 || b.rows() != n || b.ncols != cols) {
    qWarning("block of '%s' has row0 %lld, %lld rows, %lld cols", key.c_str(),
             static_cast<long long>(b.row0), static_cast<long long>(b.rows()),
             static_cast<long long>(b.ncols));
    return {};
  }
  for (int64_t r = 0; r < n; ++r)
    for (int64_t k = b.indptr[static_cast<size_t>(r)]; k < b.indptr[static_cast<size_t>(r + 1)];
         ++k) {
      if (k > b.indptr[static_cast<size_t>(r)] &&
          b.indices[static_cast<size_t>(k)] <= b.indices[static_cast<size_t>(k - 1)]) {
        qWarning("row %lld of '%s' has unsorted columns", static_cast<long long>(row0 + r),
                 key.c_str());
        return {};
      }
      out[static_cast<size_t>(r * cols + b.indices[static_cast<size_t>(k)])] =
          b.values[static_cast<size_t>(k)];
    }
  return out;
}

// Compares rows [row0, row0 + n) read by the reader with anndata's dense rows.
void compareRows(const uce::Dataset& ds, const std::string& key, const QJsonArray& ref,
                 int64_t row0, int64_t n) {
  const int64_t cols = ds.matrix(key).cols;
  std::vector<float> got = denseRows(ds, key, row0, n, cols);
  QCOMPARE(static_cast<int64_t>(got.size()), n * cols);
  for (int64_t r = 0; r < n; ++r) {
    const QJsonArray row = ref[static_cast<int>(row0 + r)].toArray();
    QCOMPARE(static_cast<int64_t>(row.size()), cols);
    for (int64_t c = 0; c < cols; ++c) {
      const float want = static_cast<float>(row[static_cast<int>(c)].toDouble());
      const float have = got[static_cast<size_t>(r * cols + c)];
      if (have != want)
        QFAIL(qPrintable(QString("%1[%2, %3] is %4, anndata reads %5")
                             .arg(QString::fromStdString(key))
                             .arg(row0 + r)
                             .arg(c)
                             .arg(double(have), 0, 'g', 9)
                             .arg(double(want), 0, 'g', 9)));
    }
  }
}

void compareFrame(const uce::DataFrame& df, const QJsonObject& ref, const QString& what) {
  const QJsonArray index = ref["index"].toArray();
  QCOMPARE(df.index.size(), static_cast<size_t>(index.size()));
  for (int i = 0; i < index.size(); ++i) QCOMPARE(df.index[static_cast<size_t>(i)], str(index[i]));
  const QJsonArray cols = ref["columns"].toArray();
  QCOMPARE(df.columns.size(), static_cast<size_t>(cols.size()));
  for (int j = 0; j < cols.size(); ++j) {
    const QJsonObject rc = cols[j].toObject();
    const std::string name = str(rc["name"]);
    const QString where = what + " column " + QString::fromStdString(name);
    const uce::Column& c = df.columns[static_cast<size_t>(j)];
    QVERIFY2(c.name == name, qPrintable(where + ": found " + QString::fromStdString(c.name)));
    const QString kind = rc["kind"].toString();
    const QJsonArray missing = rc["missing"].toArray();
    auto isMissing = [&](int i) { return !missing.isEmpty() && missing[i].toBool(); };
    if (!missing.isEmpty()) {
      QCOMPARE(c.missing.size(), static_cast<size_t>(missing.size()));
      for (int i = 0; i < missing.size(); ++i)
        QVERIFY2(bool(c.missing[static_cast<size_t>(i)]) == missing[i].toBool(), qPrintable(where));
    } else {
      QVERIFY2(c.missing.empty(), qPrintable(where + " has a mask anndata does not report"));
    }
    if (kind == "categorical") {
      QVERIFY2(c.kind == ColumnKind::Categorical, qPrintable(where));
      const QJsonArray cats = rc["categories"].toArray(), codes = rc["codes"].toArray();
      QCOMPARE(c.categories.size(), static_cast<size_t>(cats.size()));
      for (int i = 0; i < cats.size(); ++i)
        QCOMPARE(c.categories[static_cast<size_t>(i)], str(cats[i]));
      QCOMPARE(c.codes.size(), static_cast<size_t>(codes.size()));
      for (int i = 0; i < codes.size(); ++i)
        QCOMPARE(c.codes[static_cast<size_t>(i)], codes[i].toInt());
      QCOMPARE(c.ordered, rc["ordered"].toBool());
      continue;
    }
    const QJsonArray values = rc["values"].toArray();
    QCOMPARE(c.size(), static_cast<size_t>(values.size()));
    for (int i = 0; i < values.size(); ++i) {
      const auto k = static_cast<size_t>(i);
      if (isMissing(i)) continue;
      if (kind == "int") {
        QVERIFY2(c.kind == ColumnKind::Int, qPrintable(where));
        QCOMPARE(c.ints[k], static_cast<int64_t>(values[i].toDouble()));
      } else if (kind == "float") {
        QVERIFY2(c.kind == ColumnKind::Float, qPrintable(where));
        if (values[i].isNull())
          QVERIFY2(std::isnan(c.floats[k]), qPrintable(where + " should be NaN"));
        else
          QCOMPARE(c.floats[k], values[i].toDouble());
      } else if (kind == "bool") {
        QVERIFY2(c.kind == ColumnKind::Bool, qPrintable(where));
        QCOMPARE(bool(c.bools[k]), values[i].toBool());
      } else {
        QVERIFY2(c.kind == ColumnKind::String, qPrintable(where));
        QCOMPARE(c.strings[k], str(values[i]));
      }
    }
  }
}

void compareArrays(const uce::Dataset& ds, const QJsonObject& ref, bool obsm) {
  const std::vector<std::string> keys = obsm ? ds.obsmKeys() : ds.varmKeys();
  std::set<std::string> have(keys.begin(), keys.end()), want;
  for (const auto& k : ref.keys()) want.insert(k.toStdString());
  QVERIFY2(have == want, obsm ? "obsm keys differ from anndata's arrays" : "varm keys differ");
  for (const auto& key : keys) {
    uce::DenseMatrix m = obsm ? ds.readObsm(key) : ds.readVarm(key);
    const QJsonArray rows = ref[QString::fromStdString(key)].toArray();
    QCOMPARE(m.rows, static_cast<int64_t>(rows.size()));
    for (int64_t r = 0; r < m.rows; ++r) {
      const QJsonArray row = rows[static_cast<int>(r)].toArray();
      QCOMPARE(m.cols, static_cast<int64_t>(row.size()));
      for (int64_t c = 0; c < m.cols; ++c)
        QCOMPARE(m.at(r, c), static_cast<float>(row[static_cast<int>(c)].toDouble()));
    }
  }
}

void compareUns(const uce::Dataset& ds, const QJsonObject& ref) {
  const auto uns = ds.uns();
  QCOMPARE(uns.size(), static_cast<size_t>(ref.size()));
  for (const auto& k : ref.keys()) {
    const QJsonObject v = ref[k].toObject();
    auto it = uns.find(k.toStdString());
    QVERIFY2(it != uns.end(), qPrintable("uns has no " + k));
    const QString kind = v["kind"].toString();
    const uce::UnsValue& u = it->second;
    if (kind == "string") {
      QVERIFY(u.kind == uce::UnsValue::Kind::String);
      QCOMPARE(u.s, str(v["value"]));
    } else if (kind == "int") {
      QVERIFY(u.kind == uce::UnsValue::Kind::Int);
      QCOMPARE(u.i, static_cast<int64_t>(v["value"].toDouble()));
    } else if (kind == "float") {
      QVERIFY(u.kind == uce::UnsValue::Kind::Float);
      QCOMPARE(u.f, v["value"].toDouble());
    } else {
      QVERIFY(u.kind == uce::UnsValue::Kind::Bool);
      QCOMPARE(u.b, v["value"].toBool());
    }
  }
}

// Runs a test body; an unexpected exception becomes a test failure carrying its message.
template <typename Body>
void guarded(Body&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    QFAIL(e.what());
  }
}

}  // namespace

class H5adReadTest : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void initTestCase();
  void matchesAnndata_data();
  void matchesAnndata();
  void matrixInfo_data();
  void matrixInfo();
  void rowRanges_data();
  void rowRanges();
  void largeBlocks();
  void unknownColumnIsSkipped();
  void brokenLayerDoesNotBlockX();
  void badRequests();
  void errors_data();
  void errors();

 private:
  QString file(const QString& name) const { return dir_.filePath(name + ".h5ad"); }
  QJsonObject ref(const QString& name) const { return loadJson(dir_.filePath(name + ".json")); }
  QTemporaryDir dir_;
};

void H5adReadTest::initTestCase() {
  QVERIFY(dir_.isValid());
  QString out, err;
  const int rc =
      uce::test::run(UCE_PYTHON,
                     {QString(UCE_SOURCE_DIR) + "/tests/core/h5ad_read_fixtures.py", dir_.path(),
                      uce::test::sharedData("pbmc_small.h5ad"), "pbmc_small",
                      QString(kArchives) + "/v0.7.0/adata.h5ad", "archive_v0.7.0",
                      QString(kArchives) + "/v0.7.8/adata.h5ad", "archive_v0.7.8"},
                     &out, &err);
  QVERIFY2(rc == 0, qPrintable(err));
}

// Every readable file: the whole object model against anndata.read_h5ad of the same file.
void H5adReadTest::matchesAnndata_data() {
  QTest::addColumn<QString>("name");
  // anndata's own files, then ours: every storage x dtype, compression, index widths, the
  // anndata 0.7 sparse attributes, a user block.
  const char* names[] = {
      "pbmc_small", "archive_v0.7.0", "archive_v0.7.8",
      "dense_float32", "dense_float64", "dense_int32", "dense_int64",
      "csr_float32", "csr_float64", "csr_int32", "csr_int64",
      "csc_float32", "csc_float64", "csc_int32", "csc_int64",
      "csr_gzip", "csc_gzip", "csr_lzf", "dense_lzf",
      "csr_int64_indices", "csc_int64_indices", "csr_h5sparse", "csc_h5sparse", "csr_userblock"};
  for (const char* n : names)
    QTest::newRow(n) << QString(n);
}

void H5adReadTest::matchesAnndata() {
  guarded([&] {
    QFETCH(QString, name);
    const QJsonObject r = ref(name);
    QVERIFY2(!r.isEmpty(), "no anndata reference");
    QString path = file(name);
    if (name == "pbmc_small") path = uce::test::sharedData("pbmc_small.h5ad");
    if (name.startsWith("archive_")) path = QString(kArchives) + "/" + name.mid(8) + "/adata.h5ad";

    auto ds = uce::openH5ad(path.toStdString());
    QCOMPARE(ds->format(), std::string("h5ad"));
    QCOMPARE(ds->cells(), static_cast<int64_t>(r["shape"].toArray()[0].toInt()));
    compareFrame(ds->obs(), r["obs"].toObject(), "obs");
    if (QTest::currentTestFailed()) return;
    compareFrame(ds->var(), r["var"].toObject(), "var");
    if (QTest::currentTestFailed()) return;

    const QJsonObject matrices = r["matrices"].toObject();
    std::set<std::string> have, want;
    for (const auto& m : ds->matrices()) have.insert(m.key);
    for (const auto& k : matrices.keys()) want.insert(k.toStdString());
    QVERIFY2(have == want, "matrices differ from X + layers + raw/X that anndata reads");
    for (const auto& key : matrices.keys()) {
      const QJsonArray rows = matrices[key].toArray();
      QCOMPARE(ds->matrix(key.toStdString()).rows, static_cast<int64_t>(rows.size()));
      compareRows(*ds, key.toStdString(), rows, 0, rows.size());
      if (QTest::currentTestFailed()) return;
    }
    if (r.contains("raw_var")) {
      compareFrame(ds->varFor("raw/X"), r["raw_var"].toObject(), "raw/var");
      if (QTest::currentTestFailed()) return;
    }
    compareArrays(*ds, r["obsm"].toObject(), true);
    if (QTest::currentTestFailed()) return;
    compareArrays(*ds, r["varm"].toObject(), false);
    if (QTest::currentTestFailed()) return;
    compareUns(*ds, r["uns"].toObject());
  });
}

void H5adReadTest::matrixInfo_data() {
  QTest::addColumn<QString>("name");
  QTest::addColumn<int>("storage");
  QTest::addColumn<int>("dtype");
  QTest::newRow("dense float64") << "dense_float64" << int(uce::Storage::Dense)
                                 << int(uce::DType::Float64);
  QTest::newRow("dense int32") << "dense_int32" << int(uce::Storage::Dense)
                               << int(uce::DType::Int32);
  QTest::newRow("csr float32") << "csr_float32" << int(uce::Storage::Csr)
                               << int(uce::DType::Float32);
  QTest::newRow("csr int64") << "csr_int64" << int(uce::Storage::Csr) << int(uce::DType::Int64);
  QTest::newRow("csc float64") << "csc_float64" << int(uce::Storage::Csc)
                               << int(uce::DType::Float64);
  QTest::newRow("csc h5sparse") << "csc_h5sparse" << int(uce::Storage::Csc)
                                << int(uce::DType::Float32);
}

void H5adReadTest::matrixInfo() {
  guarded([&] {
    QFETCH(QString, name);
    QFETCH(int, storage);
    QFETCH(int, dtype);
    auto ds = uce::openH5ad(file(name).toStdString());
    const uce::MatrixInfo x = ds->matrix("X");
    QCOMPARE(int(x.storage), storage);
    QCOMPARE(int(x.dtype), dtype);
    QCOMPARE(x.rows, int64_t{60});
    QCOMPARE(x.cols, int64_t{25});
    if (x.storage != uce::Storage::Dense) {
      int64_t stored = 0;
      for (const auto& row : ref(name)["matrices"].toObject()["X"].toArray())
        for (const auto& v : row.toArray()) stored += v.toDouble() != 0;
      QCOMPARE(x.nnz, stored);
    }
    // raw/X has its own genes.
    QCOMPARE(ds->matrix("raw/X").cols, int64_t{30});
    QCOMPARE(ds->varFor("raw/X").index.front(), std::string("RAWGENE0"));
    QCOMPARE(ds->varFor("layers/counts").index.front(), std::string("GENE0"));
  });
}

// Any row range, in any storage, equals the same slice of anndata's matrix.
void H5adReadTest::rowRanges_data() {
  QTest::addColumn<QString>("name");
  for (const char* n : {"csr_float32", "csr_int64", "csc_float64", "csc_int32", "dense_float32",
                        "dense_int64", "csr_gzip", "csc_gzip", "csr_lzf", "dense_lzf",
                        "csr_int64_indices", "csc_int64_indices", "csr_h5sparse"})
    QTest::newRow(n) << QString(n);
}

void H5adReadTest::rowRanges() {
  guarded([&] {
    QFETCH(QString, name);
    const QJsonObject matrices = ref(name)["matrices"].toObject();
    auto ds = uce::openH5ad(file(name).toStdString());
    for (const char* key : {"X", "layers/counts", "raw/X"}) {
      const QJsonArray rows = matrices[key].toArray();
      compareRows(*ds, key, rows, 17, 37);  // rows 17..53
      compareRows(*ds, key, rows, 0, 1);
      compareRows(*ds, key, rows, 4, 1);  // an empty cell
      compareRows(*ds, key, rows, 59, 1);
      compareRows(*ds, key, rows, 60, 0);
      if (QTest::currentTestFailed()) return;
    }
    // Streaming in blocks of 7 covers every row exactly once.
    const QJsonArray x = matrices["X"].toArray();
    uce::RowStream stream(*ds, "X", 7);
    uce::CsrBlock block;
    int64_t next = 0;
    while (stream.next(block)) {
      QCOMPARE(block.row0, next);
      compareRows(*ds, "X", x, block.row0, block.rows());
      next += block.rows();
    }
    QCOMPARE(next, int64_t{60});
    // One share of three (a data-parallel rank's): blocks 1, 4, 7 of 9, and the three shares
    // together read every row once.
    std::vector<int> seen(60, 0);
    for (int part = 0; part < 3; ++part) {
      uce::RowStream share(*ds, "X", 7, part, 3);
      int64_t k = 0;
      while (share.next(block)) {
        QCOMPARE(block.row0, (part + 3 * k++) * 7);
        compareRows(*ds, "X", x, block.row0, block.rows());
        for (int64_t r = 0; r < block.rows(); ++r) ++seen[static_cast<size_t>(block.row0 + r)];
      }
      QCOMPARE(share.rowsDone(), int64_t{60});
      QCOMPARE(k, int64_t{3});  // blocks {0, 3, 6}, {1, 4, 7}, {2, 5, 8} of 0..8
    }
    QVERIFY(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }));
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, uce::RowStream(*ds, "X", 7, 3, 3));
  });
}

// Blocks of a million entries and more are read in slices on two threads: the whole matrix in
// one block, and in small blocks, give anndata's per-row sums; a NaN or bad index deep inside
// a slice is still found.
void H5adReadTest::largeBlocks() {
  guarded([&] {
    // See h5ad_read_fixtures.py; "unwritten": large chunks, one of data and one of indices
    // never written (read as 0, as anndata does).
    for (const char* layout : {"chunked", "contiguous", "bigchunks", "unwritten"}) {
      const QString suffix = QString("_") + layout;
      const QString intact = layout == std::string("chunked") ? "csr_large" : "csr_large" + suffix;
      const QJsonObject r = ref(layout == std::string("unwritten") ? intact : "csr_large");
      const QJsonArray sums = r["row_sums"].toArray(), weighted = r["row_weighted"].toArray();
      auto ds = uce::openH5ad(file(intact).toStdString());
      const int64_t rows = ds->cells();
      QCOMPARE(rows, int64_t{1500});
      for (int64_t blockRows : {rows, int64_t{7}}) {
        uce::RowStream stream(*ds, "X", blockRows);
        uce::CsrBlock b;
        int64_t nnz = 0;
        while (stream.next(b)) {
          nnz += b.nnz();
          for (int64_t i = 0; i < b.rows(); ++i) {
            double sum = 0, weightedSum = 0;
            for (int64_t k = b.indptr[size_t(i)]; k < b.indptr[size_t(i + 1)]; ++k) {
              sum += b.values[size_t(k)];
              weightedSum += double(b.values[size_t(k)]) * b.indices[size_t(k)];
            }
            QCOMPARE(sum, sums[int(b.row0 + i)].toDouble());
            QCOMPARE(weightedSum, weighted[int(b.row0 + i)].toDouble());
          }
        }
        QCOMPARE(nnz, static_cast<int64_t>(r["nnz"].toDouble()));
      }
      if (layout == std::string("unwritten")) continue;
      for (auto [name, kind] : {std::pair{"large_nan", ErrorKind::NotFinite},
                                std::pair{"large_bad_index", ErrorKind::BadIndex}}) {
        auto broken = uce::openH5ad(file(name + suffix).toStdString());
        try {
          broken->readRows("X", 0, broken->cells());
          QFAIL(qPrintable(name + suffix + ": no error"));
        } catch (const uce::Error& e) {
          QVERIFY2(e.kind() == kind, e.what());
        }
      }
    }
  });
}

void H5adReadTest::unknownColumnIsSkipped() {
  guarded([&] {
    auto ds = uce::openH5ad(file("unknown_column").toStdString());
    QVERIFY(ds->obs().find("kind") != nullptr);
    QVERIFY(ds->obs().find("mystery") == nullptr);
    QCOMPARE(ds->readRows("X", 0, 12).rows(), int64_t{12});
  });
}

void H5adReadTest::brokenLayerDoesNotBlockX() {
  guarded([&] {
    const std::string path = file("broken_layer").toStdString();
    auto ds = uce::openH5ad(path);
    QCOMPARE(ds->readRows("X", 0, 12).rows(), int64_t{12});
    for (const auto& m : ds->matrices()) QVERIFY(m.key != "layers/counts");
    StderrCapture capture;
    try {
      ds->readRows("layers/counts", 0, 1);
      QFAIL("reading the broken layer did not throw");
    } catch (const uce::Error& e) {
      QCOMPARE(e.kind(), ErrorKind::Shape);
      QVERIFY2(std::string(e.what()).find(path) != std::string::npos, e.what());
      QVERIFY2(std::string(e.what()).find("layers/counts") != std::string::npos, e.what());
    }
    QCOMPARE(capture.finish(), std::string());
  });
}

void H5adReadTest::badRequests() {
  guarded([&] {
    auto ds = uce::openH5ad(file("csr_float32").toStdString());
    try {
      ds->readRows("layers/nope", 0, 1);
      QFAIL("no error for a missing layer");
    } catch (const uce::Error& e) {
      QCOMPARE(e.kind(), ErrorKind::MissingMatrix);
      QVERIFY2(std::string(e.what()).find("layers/counts") != std::string::npos, e.what());
    }
    try {
      ds->readRows("X", 50, 11);
      QFAIL("no error for rows past the end");
    } catch (const uce::Error& e) {
      QCOMPARE(e.kind(), ErrorKind::InvalidArgument);
    }
    try {
      ds->readObsm("X_tsne");
      QFAIL("no error for a missing obsm");
    } catch (const uce::Error& e) {
      QCOMPARE(e.kind(), ErrorKind::MissingMatrix);
    }
  });
}

// Broken files: a typed error naming the file, on open or on the first read of the bad rows,
// and nothing printed on stderr.
void H5adReadTest::errors_data() {
  QTest::addColumn<QString>("name");
  QTest::addColumn<int>("kind");
  QTest::addColumn<QString>("phrase");  // the message says what is wrong
  QTest::newRow("not hdf5") << "not_hdf5" << int(ErrorKind::NotHdf5) << "not an HDF5 file";
  QTest::newRow("truncated") << "truncated" << int(ErrorKind::Truncated) << "truncated or corrupt";
  QTest::newRow("no such file") << "does_not_exist" << int(ErrorKind::Io) << "no such file";
  QTest::newRow("missing X") << "missing_x" << int(ErrorKind::MissingMatrix) << "no X";
  QTest::newRow("obs shorter than X") << "obs_short" << int(ErrorKind::Shape) << "obs has 11 rows";
  QTest::newRow("var shorter than X") << "var_short" << int(ErrorKind::Shape) << "var has 7 rows";
  QTest::newRow("indptr decreasing")
      << "indptr_decreasing" << int(ErrorKind::BadIndex) << "decreases at row 5";
  QTest::newRow("indptr end mismatch")
      << "indptr_end_mismatch" << int(ErrorKind::BadIndex) << "indptr ends at";
  QTest::newRow("indptr end negative")
      << "indptr_end_negative" << int(ErrorKind::BadIndex) << "indptr ends at -5";
  QTest::newRow("indptr start") << "indptr_start_nonzero" << int(ErrorKind::BadIndex)
                                << "starts at 1";
  QTest::newRow("indptr length") << "indptr_wrong_length" << int(ErrorKind::Shape)
                                 << "indptr has 11 entries";
  QTest::newRow("indices short") << "indices_short" << int(ErrorKind::BadIndex) << "indices";
  QTest::newRow("index out of range")
      << "index_out_of_range" << int(ErrorKind::BadIndex) << "column index 8";
  QTest::newRow("index negative") << "index_negative" << int(ErrorKind::BadIndex)
                                  << "column index -1";
  QTest::newRow("csc row out of range")
      << "csc_row_out_of_range" << int(ErrorKind::BadIndex) << "row index 12";
  QTest::newRow("NaN") << "nan_value" << int(ErrorKind::NotFinite) << "NaN";
  QTest::newRow("Inf dense") << "inf_value_dense" << int(ErrorKind::NotFinite) << "infinite";
  QTest::newRow("zero cells") << "zero_cells" << int(ErrorKind::Empty) << "zero cells";
  QTest::newRow("zero genes") << "zero_genes" << int(ErrorKind::Empty) << "zero genes";
  QTest::newRow("duplicate genes") << "duplicate_genes" << int(ErrorKind::DuplicateGenes) << "'G1'";
  QTest::newRow("unknown X encoding")
      << "x_unknown_encoding" << int(ErrorKind::Unsupported) << "awkward-array";
  QTest::newRow("X without data") << "x_missing_data" << int(ErrorKind::Shape) << "no 'data'";
  QTest::newRow("bad category codes")
      << "obs_column_bad_codes" << int(ErrorKind::BadIndex) << "obs/kind";
  QTest::newRow("corrupt chunk") << "corrupt_chunk" << int(ErrorKind::Truncated) << "X/data";
}

void H5adReadTest::errors() {
  QFETCH(QString, name);
  QFETCH(int, kind);
  QFETCH(QString, phrase);
  const std::string path = file(name).toStdString();
  StderrCapture capture;
  try {
    auto ds = uce::openH5ad(path);
    uce::RowStream stream(*ds, "X", 5);
    uce::CsrBlock block;
    while (stream.next(block)) {
    }
    QFAIL("no error");
  } catch (const uce::Error& e) {
    const std::string stderrText = capture.finish();
    QVERIFY2(stderrText.empty(), stderrText.c_str());
    QVERIFY2(int(e.kind()) == kind,
             qPrintable(QString("kind %1: %2").arg(uce::errorKindName(e.kind())).arg(e.what())));
    QVERIFY2(std::string(e.what()).find(path) != std::string::npos, e.what());
    QVERIFY2(std::string(e.what()).find(phrase.toStdString()) != std::string::npos, e.what());
    QCOMPARE(e.file(), path);
  }
}

QTEST_APPLESS_MAIN(H5adReadTest)
#include "test_h5ad_read.moc"
