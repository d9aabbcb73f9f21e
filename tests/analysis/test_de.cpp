// Differential expression as a biologist checks it: the p-values, adjusted p-values, fold
// changes and detection rates agree with scipy.stats / numpy on the same normalised data
// (tests/analysis/de_reference.py) for both tests, vs rest and vs another group, however the
// genes are blocked; gene ratios across groups agree too; bad choices fail with a message that
// says what there is; and on the synthetic atlas the Norn cells' markers come out on top.
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "test_support.h"
#include "uce/core/analysis/de.h"
#include "uce/core/dataset.h"
#include "uce/core/error.h"

using namespace uce::analysis;

namespace {

const QString kReference = QString(UCE_SOURCE_DIR) + "/tests/analysis/de_reference.py";

QJsonDocument pythonJson(const QStringList& args) {
  QString out, err;
  const int rc = uce::test::run(UCE_PYTHON, QStringList{kReference} + args, &out, &err);
  if (rc != 0) qWarning("de_reference.py failed (%d): %s", rc, qPrintable(err));
  return QJsonDocument::fromJson(out.toUtf8());
}

// Relative agreement (absolute below 1e-300, where both are in underflow).
bool close(double a, double b, double rel = 1e-6) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (std::fabs(a) < 1e-300 && std::fabs(b) < 1e-300) return true;
  return std::fabs(a - b) <= rel * std::max(std::fabs(a), std::fabs(b)) + 1e-15;
}

#define EXPECT_CLOSE(a, b, what)                                                                 \
  QVERIFY2(close((a), (b)), qPrintable(QString("%1: %2 vs scipy %3").arg(what).arg((a), 0, 'g', 17) \
                                           .arg((b), 0, 'g', 17)))

// CSV lines split on commas (our fixtures need no quoting).
std::vector<QStringList> readCsv(const QString& path) {
  std::vector<QStringList> rows;
  for (const auto& l : uce::test::lines(path)) rows.push_back(QString::fromStdString(l).split(','));
  return rows;
}

}  // namespace

class TestDe : public QObject {
  Q_OBJECT

 private:
  QTemporaryDir dir_;
  QString small_;
  QJsonObject ref_;  // de_reference.py bundle: scipy / numpy numbers for small_

  // Compares rankGenes on small_ against the reference for one setting.
  void checkRank(const QString& group, const QString& ref, DeMethod method, int64_t blockBytes) {
    auto ds = uce::openDataset(small_.toStdString());
    DeOptions o;
    o.groupby = "grp";
    o.group = group.toStdString();
    o.reference = ref.toStdString();
    o.method = method;
    o.maxBlockBytes = blockBytes;
    o.rowBlock = 37;  // many row blocks, so the streaming joins are what is tested
    const DeResult r = rankGenes(*ds, o);
    const QJsonObject want =
        ref_.value("rank/" + group + "/" + ref + "/" + (method == DeMethod::Wilcoxon ? "wilcoxon" : "t-test")).toObject();
    QCOMPARE(r.genes.size(), size_t(45));
    QCOMPARE(int(want.size()), 45);
    for (const DeGene& g : r.genes) {
      const QJsonObject w = want.value(QString::fromStdString(g.gene)).toObject();
      const QString name = QString::fromStdString(g.gene);
      const double wp = w.value("pval").toDouble(std::nan(""));
      if (std::isnan(wp) || w.value("pval").isNull()) {
        QCOMPARE(g.pval, 1.0);  // scipy: NaN (nothing varies); we keep the gene with p = 1
      } else {
        EXPECT_CLOSE(g.pval, wp, name + " pval");
        // Same direction as scipy's statistic (U - n1 n2 / 2 for Wilcoxon, t for Welch).
        const double s = w.value("stat").toDouble();
        const double centred = method == DeMethod::Wilcoxon ? s - double(r.cellsIn) * double(r.cellsOut) / 2 : s;
        QVERIFY2((g.statistic > 0) == (centred > 0) || std::fabs(centred) < 1e-9, qPrintable(name));
      }
      EXPECT_CLOSE(g.pvalAdj, w.value("pval_adj").toDouble(), name + " pval_adj");
      EXPECT_CLOSE(g.log2fc, w.value("log2fc").toDouble(), name + " log2fc");
      EXPECT_CLOSE(g.pctIn, w.value("pct_in").toDouble(), name + " pct_in");
      EXPECT_CLOSE(g.pctOut, w.value("pct_out").toDouble(), name + " pct_out");
      EXPECT_CLOSE(g.meanIn, w.value("mean_in").toDouble(), name + " mean_in");
      EXPECT_CLOSE(g.meanOut, w.value("mean_out").toDouble(), name + " mean_out");
    }
    for (size_t i = 1; i < r.genes.size(); ++i) QVERIFY(r.genes[i - 1].pval <= r.genes[i].pval);
    if (method == DeMethod::Wilcoxon && blockBytes < 1000) QVERIFY(r.passes > 3);
  }

 private Q_SLOTS:
  void initTestCase() {
    QVERIFY(dir_.isValid());
    small_ = dir_.path() + "/small.h5ad";
    ref_ = pythonJson({"bundle", small_}).object();
    QVERIFY(QFile::exists(small_));
    QVERIFY(ref_.contains("special") && ref_.contains("features/pairs/wilcoxon"));
  }

  // The building blocks against scipy.special / scipy.stats on fixed inputs.
  void specialFunctionsAgreeWithScipy() {
    const QJsonObject ref = ref_.value("special").toObject();
    for (const auto& v : ref.value("t").toArray()) {
      const auto a = v.toArray();
      EXPECT_CLOSE(studentTwoSided(a[0].toDouble(), a[1].toDouble()), a[2].toDouble(),
                   QString("t=%1 df=%2").arg(a[0].toDouble()).arg(a[1].toDouble()));
    }
    for (const auto& v : ref.value("norm").toArray()) {
      const auto a = v.toArray();
      EXPECT_CLOSE(normalTwoSided(a[0].toDouble()), a[1].toDouble(), QString("z=%1").arg(a[0].toDouble()));
      EXPECT_CLOSE(normalTwoSided(-a[0].toDouble()), a[1].toDouble(), "symmetric");
    }
    for (const auto& v : ref.value("beta").toArray()) {
      const auto a = v.toArray();
      EXPECT_CLOSE(incompleteBeta(a[0].toDouble(), a[1].toDouble(), a[2].toDouble()), a[3].toDouble(), "betainc");
    }
    std::vector<double> p;
    for (const auto& v : ref.value("bh").toObject().value("p").toArray()) p.push_back(v.toDouble());
    const auto adj = benjaminiHochberg(p);
    const auto want = ref.value("bh").toObject().value("adj").toArray();
    QCOMPARE(adj.size(), size_t(want.size()));
    for (size_t i = 0; i < adj.size(); ++i) EXPECT_CLOSE(adj[i], want[int(i)].toDouble(), "BH");
    // Dense and sparse Wilcoxon forms agree, zeros and ties included.
    const std::vector<double> a = {0, 0, 1.5, 2, 2, 3}, b = {0, 2, 2, 0.5, 0, 0, 4};
    const TestResult dense = wilcoxonRankSum(a.data(), 6, b.data(), 7);
    const std::vector<double> anz = {1.5, 2, 2, 3}, bnz = {0.5, 2, 2, 4};
    const TestResult sparse = wilcoxonSparseSorted(6, anz.data(), 4, 7, bnz.data(), 4);
    QVERIFY(close(dense.pval, sparse.pval, 1e-14));
    QVERIFY(close(dense.statistic, sparse.statistic, 1e-14));
    // Nothing varies: untestable, p = 1.
    const std::vector<double> z(5, 0.0);
    QCOMPARE(wilcoxonRankSum(z.data(), 2, z.data(), 3).pval, 1.0);
    QCOMPARE(welchTTest(z.data(), 2, z.data(), 3).pval, 1.0);
  }

  void wilcoxonVsRestAgreesWithScipy() { checkRank("alpha", "rest", DeMethod::Wilcoxon, 256ll << 20); }
  void wilcoxonVsGroupAgreesWithScipy() { checkRank("gamma", "beta", DeMethod::Wilcoxon, 256ll << 20); }
  void welchVsRestAgreesWithScipy() { checkRank("alpha", "rest", DeMethod::TTest, 256ll << 20); }
  void welchVsGroupAgreesWithScipy() { checkRank("beta", "alpha", DeMethod::TTest, 256ll << 20); }
  // A budget of a few hundred bytes forces one gene (or a few) per pass: same numbers.
  void smallGeneBlocksGiveTheSameAnswer() { checkRank("alpha", "rest", DeMethod::Wilcoxon, 400); }

  // The CLI writes the promised CSV, sorted by p, the genes made to go up in alpha on top.
  void cliWritesSortedCsv() {
    const QString out = dir_.path() + "/alpha.csv";
    QString so, se;
    QCOMPARE(uce::test::cli({"de", "--adata", small_, "--groupby", "grp", "--group", "alpha", "--method",
                             "wilcoxon", "--out", out, "--max-block-mb", "1"},
                            &so, &se),
             0);
    const auto rows = readCsv(out);
    QCOMPARE(rows.size(), size_t(46));
    QCOMPARE(rows[0].join(','), QString("gene,pval,pval_adj,log2fc,pct_in,pct_out,mean_in,mean_out"));
    const QJsonObject want = ref_.value("rank/alpha/rest/wilcoxon").toObject();
    double prev = 0;
    std::set<QString> seen;
    for (size_t i = 1; i < rows.size(); ++i) {
      QCOMPARE(rows[i].size(), 8);
      const QJsonObject w = want.value(rows[i][0]).toObject();
      const double p = rows[i][1].toDouble();
      QVERIFY(p >= prev);
      prev = p;
      if (!w.value("pval").isNull()) EXPECT_CLOSE(p, w.value("pval").toDouble(), rows[i][0]);
      EXPECT_CLOSE(rows[i][2].toDouble(), w.value("pval_adj").toDouble(), rows[i][0]);
      EXPECT_CLOSE(rows[i][3].toDouble(), w.value("log2fc").toDouble(), rows[i][0]);
      // Trailing group means (normalised counts per 10,000), which log2fc is the ratio of.
      EXPECT_CLOSE(rows[i][6].toDouble(), w.value("mean_in").toDouble(), rows[i][0]);
      EXPECT_CLOSE(rows[i][7].toDouble(), w.value("mean_out").toDouble(), rows[i][0]);
      seen.insert(rows[i][0]);
    }
    QCOMPARE(seen.size(), size_t(45));
    // Genes 0-7 are up 1.5-6x in alpha: the strongest ones lead.
    std::set<QString> top;
    for (size_t i = 1; i <= 5; ++i) top.insert(rows[i][0]);
    QVERIFY2(top.count("Gene2") || top.count("Gene3") || top.count("Gene4"), qPrintable(se));
    QVERIFY(se.contains("alpha"));
  }

  // --within: beta vs the rest among donor d1's cells only (CLI, t-test).
  void withinRestrictsTheCells() {
    const QString out = dir_.path() + "/within.csv";
    QString so, se;
    QCOMPARE(uce::test::cli({"de", "--adata", small_, "--groupby", "grp", "--group", "beta", "--method", "t-test",
                             "--within", "donor=d1", "--out", out},
                            &so, &se),
             0);
    const auto rows = readCsv(out);
    QCOMPARE(rows.size(), size_t(46));
    const QJsonObject want = ref_.value("rank/beta/rest/t-test/donor/d1").toObject();
    for (size_t i = 1; i < rows.size(); ++i) {
      const QJsonObject w = want.value(rows[i][0]).toObject();
      if (!w.value("pval").isNull()) EXPECT_CLOSE(rows[i][1].toDouble(), w.value("pval").toDouble(), rows[i][0]);
      EXPECT_CLOSE(rows[i][2].toDouble(), w.value("pval_adj").toDouble(), rows[i][0]);
      EXPECT_CLOSE(rows[i][4].toDouble(), w.value("pct_in").toDouble(), rows[i][0]);
      EXPECT_CLOSE(rows[i][5].toDouble(), w.value("pct_out").toDouble(), rows[i][0]);
    }
  }

  // Chosen genes and a ratio across the groups: vs rest, vs a reference group, all pairs.
  void featuresAgreeWithScipy_data() {
    QTest::addColumn<QString>("mode");
    QTest::addColumn<QString>("method");
    QTest::newRow("rest wilcoxon") << "rest" << "wilcoxon";
    QTest::newRow("pairs wilcoxon") << "pairs" << "wilcoxon";
    QTest::newRow("vs beta t-test") << "beta" << "t-test";
  }
  void featuresAgreeWithScipy() {
    QFETCH(QString, mode);
    QFETCH(QString, method);
    const QString out = dir_.path() + "/features.csv";
    QFile::remove(out);
    QString so, se;
    QCOMPARE(uce::test::cli({"de", "--adata", small_, "--groupby", "grp", "--genes", "Epas1,Gene3,Gene21", "--ratio",
                             "Epas1:Egln1", "--reference", mode, "--method", method, "--out", out, "--quiet"},
                            &so, &se),
             0);
    const auto rows = readCsv(out);
    QVERIFY(!rows.empty());
    QCOMPARE(rows[0].join(','), QString("feature,group,reference,n_group,n_reference,mean_group,mean_reference,"
                                        "median_group,median_reference,pct_group,pct_reference,log2fc,pval,pval_adj"));
    const QJsonArray want = ref_.value("features/" + mode + "/" + method).toArray();
    QCOMPARE(int(rows.size()) - 1, want.size());
    const QStringList numeric = {"n_group",          "n_reference", "mean_group",    "mean_reference",
                                 "median_group",     "median_reference", "pct_group", "pct_reference",
                                 "log2fc",           "pval",        "pval_adj"};
    for (int i = 0; i < want.size(); ++i) {
      const QJsonObject w = want[i].toObject();
      const QStringList& r = rows[size_t(i) + 1];
      QCOMPARE(r[0], w.value("feature").toString());
      QCOMPARE(r[1], w.value("group").toString());
      QCOMPARE(r[2], w.value("reference").toString());
      for (int c = 0; c < numeric.size(); ++c) {
        const QJsonValue v = w.value(numeric[c]);
        if (numeric[c] == "pval" && v.isNull()) {
          QCOMPARE(r[3 + c].toDouble(), 1.0);
          continue;
        }
        EXPECT_CLOSE(r[3 + c].toDouble(), v.toDouble(), r[0] + " " + r[1] + " " + numeric[c]);
      }
    }
    // The delta group has one cell: never compared; alpha's down-regulated Egln1 is not involved.
    for (const auto& r : rows) QVERIFY(r[1] != "delta" && r[2] != "delta");
  }

  // What a user gets wrong, and what the message tells them (library calls, in-process).
  void badChoicesFailWithAUsefulMessage() {
    auto ds = uce::openDataset(small_.toStdString());
    auto rank = [&](const std::string& by, const std::string& group, const std::string& ref = "rest",
                    const std::string& wcol = "", const std::string& wval = "", const std::string& counts = "") {
      DeOptions o;
      o.groupby = by;
      o.group = group;
      o.reference = ref;
      o.withinColumn = wcol;
      o.withinValue = wval;
      o.counts = counts;
      rankGenes(*ds, o);
    };
    auto expect = [&](const std::function<void()>& f, const QString& message) {
      try {
        f();
        QFAIL(qPrintable("no error; expected: " + message));
      } catch (const uce::Error& e) {
        const QString what = e.what();
        QVERIFY2(what.contains(message), qPrintable(what));
        QVERIFY2(what.startsWith(small_), qPrintable(what));  // names the file
        QCOMPARE(e.kind(), uce::ErrorKind::InvalidArgument);
      }
    };
    expect([&] { rank("celltype", "alpha"); }, "no column 'celltype'; the columns are: grp, score, donor");
    expect([&] { rank("grp", "omega"); },
           "no group 'omega'; its groups are: 'alpha' (70 cells), 'beta' (100 cells), 'gamma' (130 cells), "
           "'delta' (1 cell), 'unused' (0 cells)");
    expect([&] { rank("grp", "delta"); }, "group 'delta' of 'grp' has 1 cell(s)");
    expect([&] { rank("grp", "alpha", "unused"); }, "the reference 'unused' has 0 cell(s)");
    expect([&] { rank("grp", "alpha", "omega"); }, "no reference group 'omega'");
    expect([&] { rank("grp", "beta", "beta"); }, "the group and the reference are both 'beta'");
    expect([&] { rank("score", "1"); }, "holds real numbers");
    expect([&] { rank("grp", "alpha", "rest", "donor", "d9"); },
           "obs column 'donor' has no value 'd9' to restrict the cells to; its values are: 'd0' (107 cells)");
    expect([&] { rank("grp", "delta", "rest", "donor", "d0"); }, "among cells with donor = 'd0'");
    try {
      rank("grp", "alpha", "rest", "", "", "layers/raw");
      QFAIL("missing layer accepted");
    } catch (const uce::Error& e) {
      QVERIFY2(QString(e.what()).contains("layers/raw"), e.what());
    }
    FeatureOptions fo;
    fo.groupby = "grp";
    fo.genes = {"Epas2"};
    expect([&] { compareFeatures(*ds, fo); }, "no gene 'Epas2' in var; genes starting alike: Epas1");
    fo.genes = {"Epas1"};
    fo.comparison = Comparison::VsReference;
    fo.reference = "delta";
    expect([&] { compareFeatures(*ds, fo); }, "reference group 'delta' has 1 cell(s)");
  }

  // Through the CLI: exit code, one "error:" line, no output file.
  void cliErrorsAreOneLine_data() {
    QTest::addColumn<QStringList>("args");
    QTest::addColumn<QString>("message");
    QTest::newRow("unknown group") << QStringList{"--groupby", "grp", "--group", "omega"}
                                   << "no group 'omega'; its groups are: 'alpha' (70 cells)";
    QTest::newRow("bad method") << QStringList{"--groupby", "grp", "--group", "alpha", "--method", "anova"}
                                << "choose wilcoxon or t-test";
    QTest::newRow("bad ratio") << QStringList{"--groupby", "grp", "--ratio", "Epas1/Egln1"}
                               << "--ratio expects NUMERATOR:DENOMINATOR";
    QTest::newRow("no group") << QStringList{"--groupby", "grp"} << "give --group G to rank genes";
  }
  void cliErrorsAreOneLine() {
    QFETCH(QStringList, args);
    QFETCH(QString, message);
    const QString out = dir_.path() + "/bad.csv";
    QFile::remove(out);
    QString so, se;
    const int rc = uce::test::cli(QStringList{"de", "--adata", small_, "--out", out} + args, &so, &se);
    QCOMPARE(rc, 2);
    QVERIFY2(se.startsWith("error:") && se.trimmed().count('\n') == 0, qPrintable(se));
    QVERIFY2(se.contains(message), qPrintable(se));
    QVERIFY(!QFile::exists(out));
  }

  // Case-insensitive gene names (mouse Epas1 asked as EPAS1) and a bad file.
  void namesAndFiles() {
    auto ds = uce::openDataset(small_.toStdString());
    FeatureOptions o;
    o.groupby = "grp";
    o.genes = {"EPAS1"};
    const FeatureResult r = compareFeatures(*ds, o);
    QVERIFY(!r.rows.empty());
    QCOMPARE(r.rows[0].feature, std::string("Epas1"));
    QString so, se;
    QVERIFY(uce::test::cli({"de", "--adata", dir_.path() + "/none.h5ad", "--groupby", "grp", "--group", "a", "--out",
                            dir_.path() + "/x.csv"},
                           &so, &se) != 0);
    QVERIFY2(se.contains("none.h5ad"), qPrintable(se));
  }

  // The synthetic kidney: Norn cells against the rest put their named markers on top, going up;
  // EPO goes down in the diseased donor's Norn cells (the generator's CKD effect).
  void nornMarkersOnTopInSyntheticKidney() {
    const QString atlas = dir_.path() + "/atlas";
    QString so, se;
    QCOMPARE(uce::test::cli({"synth", "--out", atlas, "--cells", "4000", "--genes", "1500", "--seed", "5",
                             "--species", "human", "--tissues", "kidney", "--no-assets", "--quiet"},
                            &so, &se),
             0);
    const QString kidney = atlas + "/human_kidney.h5ad";
    const QString out = dir_.path() + "/norn.csv";
    QCOMPARE(uce::test::cli({"de", "--adata", kidney, "--groupby", "cell_type", "--group", "Norn cell", "--out", out},
                            &so, &se),
             0);
    const auto rows = readCsv(out);
    QCOMPARE(rows.size(), size_t(1501));
    std::map<QString, size_t> rankOf;
    std::map<QString, double> fc;
    for (size_t i = 1; i < rows.size(); ++i) {
      rankOf[rows[i][0]] = i;
      fc[rows[i][0]] = rows[i][3].toDouble();
    }
    int inTop = 0;
    for (const QString g : {"DCN", "LPAR1", "COL1A1", "CXCL12", "CFH", "CXCL14", "EPO"}) {
      QVERIFY2(rankOf.count(g), qPrintable(g));
      QVERIFY2(fc[g] > 0.5, qPrintable(QString("%1 log2fc %2").arg(g).arg(fc[g])));
      inTop += rankOf[g] <= 40;
    }
    QVERIFY2(inTop >= 6, qPrintable(QString("only %1 of 7 Norn markers in the top 40").arg(inTop)));
    // The top 10 go up.
    for (size_t i = 1; i <= 10; ++i) QVERIFY2(rows[i][3].toDouble() > 0, qPrintable(rows[i].join(',')));

    // EPO in Norn cells across disease (paper Fig. 4e's kind of plot), via the library call.
    auto ds = uce::openDataset(kidney.toStdString());
    const auto* disease = ds->obs().find("disease");
    QVERIFY(disease);
    FeatureOptions fo;
    fo.groupby = "disease";
    fo.withinColumn = "cell_type";
    fo.withinValue = "Norn cell";
    fo.genes = {"EPO"};
    fo.ratios = {{"EPO", "DCN"}};
    const FeatureResult fr = compareFeatures(*ds, fo);
    QVERIFY(!fr.rows.empty());
    bool sawDown = false;
    for (const auto& row : fr.rows)
      if (row.feature == "EPO" && row.group != "normal" && row.log2fc < 0 && row.pval < 0.05) sawDown = true;
    QVERIFY2(sawDown, "EPO is not lower in the diseased donor's Norn cells");
    const auto* type = ds->obs().find("cell_type");
    int64_t norn = 0;
    for (size_t i = 0; i < type->size(); ++i) norn += type->valueAsString(i) == "Norn cell";
    for (const auto& row : fr.rows) QVERIFY(row.nGroup + row.nReference == norn);
  }
};

QTEST_GUILESS_MAIN(TestDe)
#include "test_de.moc"
