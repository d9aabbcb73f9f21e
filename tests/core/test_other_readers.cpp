// 10x HDF5, Matrix Market folders and dense CSV/TSV: values, names and row ranges match what
// Python (h5py / scipy / pandas / anndata) sees in the same files, and each malformed input
// gives a typed error naming the file and the line.
#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <functional>
#include <zlib.h>

#include "readers.h"
#include "tenx_features.h"
#include "test_support.h"
#include "uce/core/dataset.h"
#include "uce/core/error.h"

using namespace uce;

namespace {

// Whole matrix as dense [cells][genes], read through RowStream in small blocks so block
// boundaries are exercised.
std::vector<std::vector<double>> denseOf(const Dataset& ds, int64_t blockRows = 7) {
  const MatrixInfo info = ds.matrix("X");
  std::vector<std::vector<double>> out;
  RowStream stream(ds, "X", blockRows);
  CsrBlock b;
  while (stream.next(b)) {
    for (int64_t r = 0; r < b.rows(); ++r) {
      std::vector<double> row(static_cast<size_t>(info.cols), 0.0);
      for (int64_t k = b.indptr[static_cast<size_t>(r)]; k < b.indptr[static_cast<size_t>(r + 1)]; ++k)
        row[static_cast<size_t>(b.indices[static_cast<size_t>(k)])] += b.values[static_cast<size_t>(k)];
      out.push_back(std::move(row));
    }
  }
  return out;
}

std::vector<std::string> strings(const QJsonValue& v) {
  std::vector<std::string> out;
  for (const auto& x : v.toArray()) out.push_back(x.toString().toStdString());
  return out;
}

std::vector<std::vector<double>> matrixOf(const QJsonValue& v) {
  std::vector<std::vector<double>> out;
  for (const auto& row : v.toArray()) {
    std::vector<double> r;
    for (const auto& x : row.toArray()) r.push_back(x.toDouble());
    out.push_back(std::move(r));
  }
  return out;
}

void writeGz(const QString& path, const QByteArray& data) {
  gzFile f = gzopen(path.toLocal8Bit().constData(), "wb");
  QVERIFY(f);
  gzwrite(f, data.constData(), static_cast<unsigned>(data.size()));
  gzclose(f);
}

}  // namespace

class TestOtherReaders : public QObject {
  Q_OBJECT

 private:
  QTemporaryDir tmp_;
  QJsonObject expected_;
  QString at(const QString& name) const { return tmp_.filePath(name); }

  // Names, ids and every value of `ds` against expected.json[key].
  void compareWithPython(const Dataset& ds, const QString& key, bool geneIds) {
    const QJsonObject e = expected_.value(key).toObject();
    QVERIFY2(!e.isEmpty(), qPrintable("no expected values for " + key));
    QCOMPARE(ds.obs().index, strings(e["obs"]));
    QCOMPARE(ds.var().index, strings(e["var"]));
    if (geneIds) {
      const Column* ids = ds.var().find("gene_ids");
      QVERIFY(ids);
      QCOMPARE(ids->strings, strings(e["gene_ids"]));
    }
    const auto want = matrixOf(e["X"]);
    QCOMPARE(ds.cells(), static_cast<int64_t>(want.size()));
    QCOMPARE(ds.matrix("X").cols, static_cast<int64_t>(want[0].size()));
    QCOMPARE(denseOf(ds), want);
    QCOMPARE(denseOf(ds, 1000), want);
    // A row range from the middle starts at the requested row and matches the same rows.
    const int64_t row0 = ds.cells() / 3, n = ds.cells() / 2;
    CsrBlock b = ds.readRows("X", row0, n);
    QCOMPARE(b.row0, row0);
    QCOMPARE(b.rows(), n);
    for (int64_t r = 0; r < n; ++r)
      for (int64_t k = b.indptr[static_cast<size_t>(r)]; k < b.indptr[static_cast<size_t>(r + 1)]; ++k)
        QCOMPARE(double(b.values[static_cast<size_t>(k)]),
                 want[static_cast<size_t>(row0 + r)][static_cast<size_t>(b.indices[static_cast<size_t>(k)])]);
  }

  // Runs `open` and checks the error's kind and that its message names `file` and `detail`.
  void expectError(const std::function<void()>& open, ErrorKind kind, const QString& file,
                   const QString& detail) {
    try {
      open();
    } catch (const Error& e) {
      const QString msg = QString::fromStdString(e.what());
      QVERIFY2(e.kind() == kind, qPrintable(QString("kind %1, expected %2: %3")
                                               .arg(errorKindName(e.kind()), errorKindName(kind), msg)));
      QVERIFY2(msg.contains(file), qPrintable("message does not name " + file + ": " + msg));
      QVERIFY2(msg.contains(detail), qPrintable("message lacks '" + detail + "': " + msg));
      return;
    }
    QFAIL(qPrintable("no error; expected " + QString(errorKindName(kind)) + " naming " + file));
  }

  // A Matrix Market folder of 3 genes x 2 cells with the given matrix text.
  static constexpr const char* kFeatures =
      "E1\tG1\tGene Expression\nE2\tG2\tGene Expression\nE3\tG3\tGene Expression\n";
  static constexpr const char* kBarcodes = "AAA-1\nCCC-1\n";
  // A null `barcodes` leaves barcodes.tsv out.
  QString mtxDir(const QString& name, const QByteArray& matrix, const QByteArray& features = kFeatures,
                 const QByteArray& barcodes = kBarcodes) {
    QDir(tmp_.path()).mkpath(name);
    test::writeAll(at(name + "/matrix.mtx"), matrix);
    test::writeAll(at(name + "/features.tsv"), features);
    if (!barcodes.isNull()) test::writeAll(at(name + "/barcodes.tsv"), barcodes);
    return at(name);
  }

 private Q_SLOTS:
  void initTestCase() {
    QVERIFY(tmp_.isValid());
    QString out, err;
    const QString script = QString(UCE_SOURCE_DIR) + "/tests/core/other_readers_fixtures.py";
    QCOMPARE(test::run(UCE_PYTHON, {script, tmp_.path()}, &out, &err), 0);
    expected_ = QJsonDocument::fromJson(test::readAll(at("expected.json"))).object();
    QVERIFY(!expected_.isEmpty());
  }

  void tenxH5MatchesPython() {
    auto ds = openDataset(at("10x.h5").toStdString());
    QCOMPARE(ds->format(), std::string("10x-h5"));
    compareWithPython(*ds, "10x", true);
    const MatrixInfo m = ds->matrix("X");
    QCOMPARE(m.dtype, DType::Int32);
    QCOMPARE(m.storage, Storage::Csr);
    // The antibody feature is not a gene: 25 features in the file, 24 genes.
    QCOMPARE(m.cols, int64_t{24});
    const Column* types = ds->var().find("feature_types");
    QVERIFY(types);
    QCOMPARE(types->categories, std::vector<std::string>{"Gene Expression"});
    QVERIFY(ds->var().find("genome"));
    // Repeated "TP53" made unique as anndata does, and both changes noted for the user.
    QCOMPARE(ds->var().index[3], std::string("TP53"));
    QCOMPARE(ds->var().index[8], std::string("TP53-1"));
    const auto uns = ds->uns();
    QVERIFY(uns.count(kNoteRenamedGenes));
    QVERIFY(uns.at(kNoteRenamedGenes).s.find("TP53") != std::string::npos);
    QVERIFY(uns.count(kNoteDroppedFeatures));
    QVERIFY(uns.at(kNoteDroppedFeatures).s.find("Antibody Capture") != std::string::npos);
  }

  void tenxH5BadIndexRefusedOnRead() {
    auto ds = openDataset(at("10x_badindex.h5").toStdString());
    expectError([&] { ds->readRows("X", 0, 2); }, ErrorKind::BadIndex, "10x_badindex.h5",
                "feature 7 in cell 1");
    QCOMPARE(ds->readRows("X", 0, 1).nnz(), int64_t{1});  // the good cell still reads
    expectError([&] { ds->readRows("X", 1, 5); }, ErrorKind::InvalidArgument, "10x_badindex.h5",
                "2 cells");
    expectError([&] { ds->readRows("raw/X", 0, 1); }, ErrorKind::MissingMatrix, "10x_badindex.h5",
                "raw/X");
  }

  void mtxCellRanger3Plain() {
    auto ds = openDataset(at("mtx_v3").toStdString());
    QCOMPARE(ds->format(), std::string("mtx"));
    compareWithPython(*ds, "mtx_v3", true);
    QCOMPARE(ds->matrix("X").dtype, DType::Int64);
  }

  void mtxCellRanger3Gzipped() {
    // Opened through the matrix file itself, as a user picking matrix.mtx.gz would.
    auto ds = openDataset(at("mtx_v3_gz/matrix.mtx.gz").toStdString());
    compareWithPython(*ds, "mtx_v3_gz", true);
    QVERIFY(ds->uns().count(kNoteDroppedFeatures));
  }

  void mtxCellRanger2Genes() {
    auto ds = openDataset(at("mtx_v2").toStdString());
    compareWithPython(*ds, "mtx_v2", true);
    QCOMPARE(ds->matrix("X").dtype, DType::Float64);
    QVERIFY(!ds->var().find("feature_types"));
  }

  void mtxPrefixedGeoNames() {
    QDir(tmp_.path()).mkpath("geo");
    for (const char* f : {"matrix.mtx", "features.tsv", "barcodes.tsv"})
      QVERIFY(QFile::copy(at(QString("mtx_v3/") + f), at(QString("geo/GSM42_") + f)));
    auto ds = openDataset(at("geo").toStdString());
    compareWithPython(*ds, "mtx_v3", true);
  }

  void csvCellsAsRows() {
    auto ds = openDataset(at("cells.csv").toStdString());
    QCOMPARE(ds->format(), std::string("csv"));
    compareWithPython(*ds, "csv", false);
    QCOMPARE(ds->obs().indexName, std::string("cell"));
    const MatrixInfo m = ds->matrix("X");
    QCOMPARE(m.storage, Storage::Dense);
    QCOMPARE(m.dtype, DType::Float64);  // 2.5 is in there
  }

  void tsvGenesAsRowsGzipped() {
    OpenOptions o;
    o.csvGenesAsRows = true;
    auto ds = openDataset(at("genes.tsv.gz").toStdString(), o);
    compareWithPython(*ds, "tsv_genes_as_rows", false);
    QCOMPARE(ds->var().indexName, std::string("gene"));
  }

  void csvRStyleHeader() {
    auto ds = openDataset(at("rstyle.csv").toStdString());
    compareWithPython(*ds, "rstyle", false);
  }

  void mtxErrors() {
    const QByteArray head = "%%MatrixMarket matrix coordinate integer general\n%comment\n";
    expectError([&] { openMtxDir(mtxDir("bad_header", "%%MatrixMarkt matrix coordinate\n3 2 1\n1 1 1\n").toStdString()); },
                ErrorKind::Format, "matrix.mtx", "line 1");
    expectError([&] { openMtxDir(mtxDir("few_entries", head + "3 2 4\n1 1 5\n2 2 1\n3 1 2\n").toStdString()); },
                ErrorKind::Format, "matrix.mtx", "line 3 declares 4 entries but the file has 3");
    expectError([&] { openMtxDir(mtxDir("many_entries", head + "3 2 2\n1 1 5\n2 2 1\n3 1 2\n").toStdString()); },
                ErrorKind::Format, "matrix.mtx", "line 6");
    expectError([&] { openMtxDir(mtxDir("out_of_range", head + "3 2 2\n1 1 5\n4 2 1\n").toStdString()); },
                ErrorKind::Format, "matrix.mtx", "line 5: entry (4, 2) is outside");
    expectError([&] { openMtxDir(mtxDir("zero_index", head + "3 2 1\n0 1 5\n").toStdString()); },
                ErrorKind::Format, "matrix.mtx", "line 4");
    expectError([&] { openMtxDir(mtxDir("not_number", head + "3 2 1\n1 1 five\n").toStdString()); },
                ErrorKind::Format, "matrix.mtx", "line 4");
    expectError([&] { openMtxDir(mtxDir("fraction", head + "3 2 1\n1 1 2.5\n").toStdString()); },
                ErrorKind::Format, "matrix.mtx", "not a whole number");
    expectError([&] { openMtxDir(mtxDir("nan", "%%MatrixMarket matrix coordinate real general\n3 2 1\n1 1 nan\n").toStdString()); },
                ErrorKind::NotFinite, "matrix.mtx", "line 3");
    expectError([&] { openMtxDir(mtxDir("barcodes_count", head + "3 2 1\n1 1 5\n", kFeatures, "A\nB\nC\n").toStdString()); },
                ErrorKind::Shape, "barcodes.tsv", "lists 3");
    expectError([&] { openMtxDir(mtxDir("features_count", head + "3 2 1\n1 1 5\n", "E1\tG1\nE2\tG2\n").toStdString()); },
                ErrorKind::Shape, "features.tsv", "lists 2");
    expectError([&] { openMtxDir(mtxDir("duplicate", head + "3 2 1\n1 1 5\n", "E1\tG1\nE2\tG2\nE3\tG1\n").toStdString()); },
                ErrorKind::DuplicateGenes, "features.tsv", "'G1'");
    expectError([&] { openMtxDir(mtxDir("ragged_features", head + "3 2 1\n1 1 5\n", "E1\tG1\nE2\nE3\tG3\n").toStdString()); },
                ErrorKind::Format, "features.tsv", "line 2");
    expectError([&] { openMtxDir(mtxDir("no_barcodes", head + "3 2 1\n1 1 5\n", kFeatures, QByteArray()).toStdString()); },
                ErrorKind::Io, "no_barcodes", "barcodes.tsv");
    expectError([&] { openMtxDir(mtxDir("array", "%%MatrixMarket matrix array integer general\n3 2\n").toStdString()); },
                ErrorKind::Unsupported, "matrix.mtx", "coordinate");
    // A gzip stream cut in the middle.
    QDir(tmp_.path()).mkpath("truncated_gz");
    QByteArray big = head + "3 2 3000\n";
    for (int i = 0; i < 3000; ++i) big += QByteArray::number(i % 3 + 1) + " " + QByteArray::number(i % 2 + 1) + " 1\n";
    writeGz(at("truncated_gz/matrix.mtx.gz"), big);
    QByteArray gz = test::readAll(at("truncated_gz/matrix.mtx.gz"));
    test::writeAll(at("truncated_gz/matrix.mtx.gz"), gz.left(gz.size() / 2));
    test::writeAll(at("truncated_gz/features.tsv"), "E1\tG1\nE2\tG2\nE3\tG3\n");
    test::writeAll(at("truncated_gz/barcodes.tsv"), "A\nB\n");
    expectError([&] { openMtxDir(at("truncated_gz").toStdString()); }, ErrorKind::Truncated,
                "matrix.mtx.gz", "ends early");
  }

  void csvErrors() {
    auto csv = [&](const QString& name, const QByteArray& text) {
      test::writeAll(at(name), text);
      return at(name).toStdString();
    };
    expectError([&] { openDelimited(csv("ragged.csv", ",G1,G2\nc1,1,2\nc2,1\n"), false); },
                ErrorKind::Format, "ragged.csv", "line 3 has 2 fields");
    expectError([&] { openDelimited(csv("text.csv", ",G1,G2\nc1,1,two\n"), false); },
                ErrorKind::Format, "text.csv", "line 2, column 3 (gene 'G2'): 'two' is not a number");
    expectError([&] { openDelimited(csv("inf.tsv", "\tG1\tG2\nc1\t1\tinf\n"), false); },
                ErrorKind::NotFinite, "inf.tsv", "line 2, column 3");
    expectError([&] { openDelimited(csv("empty.csv", ""), false); }, ErrorKind::Empty, "empty.csv", "empty");
    expectError([&] { openDelimited(csv("header_only.csv", ",G1,G2\n"), false); }, ErrorKind::Empty,
                "header_only.csv", "zero cells");
    expectError([&] { openDelimited(csv("dup.csv", ",G1,G2,G1\nc1,1,2,3\n"), false); },
                ErrorKind::DuplicateGenes, "dup.csv", "'G1'");
    expectError([&] { openDelimited(csv("dup_rows.csv", ",c1,c2\nG1,1,2\nG1,3,4\n"), true); },
                ErrorKind::DuplicateGenes, "dup_rows.csv", "'G1'");
    expectError([&] { openDelimited(csv("quote.csv", ",\"G1,G2\nc1,1,2\n"), false); },
                ErrorKind::Format, "quote.csv", "line 1");
  }

  void csvSeparatorFromContent() {
    // Tab-separated text saved as .csv, with Windows line endings.
    test::writeAll(at("tabs.csv"), "\tG1\tG2\r\nc1\t0\t3\r\nc2\t4\t0\r\n");
    auto ds = openDelimited(at("tabs.csv").toStdString(), false);
    QCOMPARE(ds->var().index, (std::vector<std::string>{"G1", "G2"}));
    QCOMPARE(denseOf(*ds), (std::vector<std::vector<double>>{{0, 3}, {4, 0}}));
    QCOMPARE(ds->matrix("X").dtype, DType::Int64);
  }

  void makeNamesUniqueLikeAnndata() {
    // anndata.utils.make_index_unique(['A','A','A-1','B','A']) -> A, A-2, A-1, B, A-3
    std::vector<std::string> names = {"A", "A", "A-1", "B", "A"};
    QCOMPARE(makeNamesUnique(names), int64_t{2});
    QCOMPARE(names, (std::vector<std::string>{"A", "A-2", "A-1", "B", "A-3"}));
  }
};

QTEST_APPLESS_MAIN(TestOtherReaders)
#include "test_other_readers.moc"
