// Hierarchical clustering of centroids against SciPy: the same linkage matrix (cluster ids,
// sizes, merge distances to 1e-6) for average, Ward and complete linkage, and Newick output.
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <fstream>
#include <sstream>

#include "test_support.h"
#include "uce/core/analysis/hclust.h"
#include "uce/core/error.h"

using namespace uce::analysis;

namespace {

std::vector<std::vector<double>> readCsv(const QString& path) {
  std::vector<std::vector<double>> rows;
  for (const auto& l : uce::test::lines(path)) {
    if (l.empty()) continue;
    std::vector<double> r;
    std::stringstream ss(l);
    std::string f;
    while (std::getline(ss, f, ',')) r.push_back(std::stod(f));
    rows.push_back(r);
  }
  return rows;
}

}  // namespace

class TestHclust : public QObject {
  Q_OBJECT
 private:
  QTemporaryDir tmp_;

 private Q_SLOTS:
  void initTestCase() {
    QVERIFY(tmp_.isValid());
    // Point sets: random Gaussian, clustered (centroid-like: well separated groups), tiny ones,
    // and a high-dimensional one. SciPy's linkage of each, per method, and its Newick rendering
    // with our convention (branch = parent height - child height), computed from SciPy's tree.
    QString err;
    const int rc = uce::test::python(QString(R"(
import numpy as np
from scipy.cluster.hierarchy import linkage
d = '%1'
rng = np.random.default_rng(7)
sets = {
  'gauss40': rng.normal(size=(40, 5)),
  'clustered60': np.vstack([rng.normal(loc=c, scale=0.3, size=(12, 16)) for c in rng.normal(scale=4, size=(5, 16))]),
  'two': rng.normal(size=(2, 3)),
  'three': rng.normal(size=(3, 2)),
  'wide150': rng.normal(size=(150, 128)),
}
def newick(Z, names):
    n = len(names); text = list(names); h = [0.0] * n
    for a, b, dist, size in Z:
        a = int(a); b = int(b)
        text.append('(%s:%s,%s:%s)' % (text[a], '%.10g' % max(0.0, dist - h[a]), text[b], '%.10g' % max(0.0, dist - h[b])))
        h.append(dist)
    return text[-1] + ';\n'
for name, x in sets.items():
    np.savetxt(d + '/' + name + '.points.csv', x, delimiter=',', fmt='%.17g')
    for m in ['average', 'ward', 'complete', 'single']:
        Z = linkage(x, method=m, metric='euclidean')
        np.savetxt(d + '/' + name + '.' + m + '.csv', Z, delimiter=',', fmt='%.17g')
        with open(d + '/' + name + '.' + m + '.nwk', 'w') as f:
            f.write(newick(Z, ['L%d' % i for i in range(len(x))]))
)").arg(tmp_.path()), nullptr, &err);
    QVERIFY2(rc == 0, qPrintable(err));
  }

  void matchesScipy_data() {
    QTest::addColumn<QString>("set");
    QTest::addColumn<QString>("method");
    for (const char* s : {"gauss40", "clustered60", "two", "three", "wide150"})
      for (const char* m : {"average", "ward", "complete", "single"}) QTest::newRow((std::string(s) + "/" + m).c_str()) << s << m;
  }

  void matchesScipy() {
    QFETCH(QString, set);
    QFETCH(QString, method);
    const auto pts = readCsv(tmp_.filePath(set + ".points.csv"));
    const auto z = readCsv(tmp_.filePath(set + "." + method + ".csv"));
    const int64_t n = static_cast<int64_t>(pts.size()), dim = static_cast<int64_t>(pts[0].size());
    std::vector<double> flat;
    for (const auto& r : pts) flat.insert(flat.end(), r.begin(), r.end());
    const auto merges = hierarchicalClustering(flat, n, dim, parseLinkage(method.toStdString()));
    QCOMPARE(static_cast<int64_t>(merges.size()), n - 1);
    QCOMPARE(static_cast<int64_t>(z.size()), n - 1);
    for (size_t i = 0; i < merges.size(); ++i) {
      // Same clusters merged in the same order (so the same topology), same sizes and heights.
      QCOMPARE(merges[i].a, static_cast<int64_t>(z[i][0]));
      QCOMPARE(merges[i].b, static_cast<int64_t>(z[i][1]));
      QVERIFY2(std::fabs(merges[i].distance - z[i][2]) <= 1e-6 * std::max(1.0, std::fabs(z[i][2])),
               qPrintable(QString("row %1: %2 vs scipy %3").arg(i).arg(merges[i].distance, 0, 'g', 17).arg(z[i][2], 0, 'g', 17)));
      QCOMPARE(merges[i].size, static_cast<int64_t>(z[i][3]));
    }
    std::vector<std::string> names;
    for (int64_t i = 0; i < n; ++i) names.push_back("L" + std::to_string(i));
    QCOMPARE(QString::fromStdString(newick(merges, names)),
             QString::fromUtf8(uce::test::readAll(tmp_.filePath(set + "." + method + ".nwk"))));
    // The CSV form reads back as the same matrix.
    const std::string csv = linkageCsv(merges);
    QVERIFY(csv.rfind("a,b,distance,size\n", 0) == 0);
    QCOMPARE(static_cast<int64_t>(std::count(csv.begin(), csv.end(), '\n')), n);
  }

  void newickQuotesAwkwardNames() {
    const std::vector<double> p = {0, 0, 1, 0, 5, 0};
    const auto m = hierarchicalClustering(p, 3, 2, Linkage::Average);
    const std::string t = newick(m, {"T cell", "B:cell", "it's"});
    QCOMPARE(QString::fromStdString(t), QString("('it''s':4.5,('T cell':1,'B:cell':1):3.5);\n"));
  }

  void refusesBadInput() {
    QVERIFY_EXCEPTION_THROWN(hierarchicalClustering({1.0, 2.0}, 1, 2, Linkage::Ward), uce::Error);
    QVERIFY_EXCEPTION_THROWN(hierarchicalClustering({1.0, NAN, 0, 0}, 2, 2, Linkage::Ward), uce::Error);
    QVERIFY_EXCEPTION_THROWN(parseLinkage("centroid"), uce::Error);
    try {
      parseLinkage("wards");
      QFAIL("no error");
    } catch (const uce::Error& e) {
      QVERIFY(QString(e.what()).contains("average, ward"));
    }
  }
};

QTEST_GUILESS_MAIN(TestHclust)
#include "test_hclust.moc"
