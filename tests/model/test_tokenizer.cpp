// Cell sentences (UCE_SPEC section 3) on a hand-made gene table: special tokens, chromosome
// grouping and order, genomic order inside a group, sampling proportional to log1p(count),
// padding, and reproducibility from (seed, cell) alone.
#include <QtTest>
#include <map>
#include <set>

#include "uce/model/tokenizer.h"

using namespace uce::model;

namespace {

// 8 genes on 3 chromosomes; columns deliberately not in genomic order.
GeneTable makeTable() {
  GeneTable t;
  //            col:   0    1    2    3    4    5    6    7
  t.token = {100, 101, 102, 103, 104, -1, 106, 107};   // col 5 has no embedding
  t.chrom = {2, 0, 0, 1, 0, 1, 2, 1};
  t.start = {500, 30, 10, 7, 20, 1, 100, 3};
  t.finalize();
  return t;
}

struct Parsed {
  std::vector<int32_t> chromOrder;
  std::vector<std::vector<int32_t>> groups;
};

Parsed parse(const std::vector<int32_t>& s, int len, int64_t chromOffset) {
  Parsed p;
  int i = 1;
  while (i < len) {
    p.chromOrder.push_back(static_cast<int32_t>(s[i] - chromOffset));
    ++i;
    std::vector<int32_t> g;
    while (s[i] != kChromCloseToken) g.push_back(s[i++]);
    ++i;
    p.groups.push_back(g);
  }
  return p;
}

}  // namespace

class TestTokenizer : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void genomicRanks() {
    GeneTable t = makeTable();
    QCOMPARE(t.matched(), int64_t(7));
    // chrom 0: cols 2 (10), 4 (20), 1 (30); chrom 1: 7 (3), 3 (7); chrom 2: 6 (100), 0 (500)
    QCOMPARE(t.byRank, (std::vector<int32_t>{2, 4, 1, 7, 3, 6, 0}));
    QCOMPARE(t.rank[5], -1);
  }

  void sentenceStructure() {
    GeneTable t = makeTable();
    SentenceOptions o;
    o.sampleSize = 64;
    o.padLength = 96;
    o.chromTokenOffset = 1000;
    o.seed = 5;
    SentenceBuilder b(t, o);
    // cell: cols 0,1,2,3,4,5,7 expressed (5 unmatched), col 6 zero
    std::vector<int32_t> cols = {3, 0, 1, 5, 2, 7, 4, 6};
    std::vector<float> vals = {4, 1, 9, 50, 2, 3, 7, 0};
    std::vector<int32_t> s(96, -7);
    int len = b.build(cols.data(), vals.data(), 8, 42, s.data());
    QCOMPARE(s[0], kClsToken);
    QCOMPARE(len, 1 + 64 + 2 * 3);  // CLS + genes + open/close for each of 3 chromosomes
    for (int i = len; i < 96; ++i) QCOMPARE(s[i], kPadToken);
    Parsed p = parse(s, len, 1000);
    QCOMPARE(std::set<int32_t>(p.chromOrder.begin(), p.chromOrder.end()), (std::set<int32_t>{0, 1, 2}));
    size_t genes = 0;
    std::map<int32_t, int> drawn;
    for (size_t g = 0; g < p.groups.size(); ++g) {
      const auto& grp = p.groups[g];
      genes += grp.size();
      for (int32_t tok : grp) ++drawn[tok];
      // genes of this group belong to its chromosome, in genomic (start) order
      std::vector<int32_t> expected;
      for (int32_t col : t.byRank)
        if (t.chrom[col] == p.chromOrder[g])
          for (int k = 0; k < std::count(grp.begin(), grp.end(), t.token[col]); ++k) expected.push_back(t.token[col]);
      QCOMPARE(grp, expected);
    }
    QCOMPARE(genes, size_t(64));
    QVERIFY(!drawn.count(106));  // zero count never drawn
    QVERIFY(!drawn.count(105));  // unmatched gene never appears
  }

  // Training's equal-length sentences (SentenceOptions::fixedLength): cells whose draws cover
  // 1, 2 or 3 of the table's 3 chromosomes all come out at 1 + sampleSize + 2 x 3 tokens, with
  // the release's structure, the first sampleSize draws unchanged, and no padding inside.
  void fixedLengthFillsWithExtraDraws() {
    GeneTable t = makeTable();
    SentenceOptions o;
    o.sampleSize = 8;
    o.padLength = 40;
    o.chromTokenOffset = 1000;
    o.seed = 3;
    SentenceOptions f = o;
    f.fixedLength = 1 + 8 + 2 * 3;
    SentenceBuilder plain(t, o), filled(t, f);
    const std::vector<std::vector<int32_t>> cells = {{1, 2, 4}, {2, 7}, {0, 1, 2, 3, 4, 6, 7}, {3}};
    const std::vector<int> chromosomes = {1, 2, 3, 1};
    for (size_t c = 0; c < cells.size(); ++c)
      for (uint64_t cell = 0; cell < 20; ++cell) {
        std::vector<float> vals(cells[c].size(), 5.f);
        std::vector<int32_t> a(40), s(40);
        const int n = static_cast<int>(cells[c].size());
        const int lenPlain = plain.build(cells[c].data(), vals.data(), n, cell, a.data());
        const int len = filled.build(cells[c].data(), vals.data(), n, cell, s.data());
        QCOMPARE(len, f.fixedLength);
        for (int i = len; i < 40; ++i) QCOMPARE(s[i], kPadToken);
        const Parsed pp = parse(a, lenPlain, 1000), pf = parse(s, len, 1000);
        QCOMPARE(lenPlain, 1 + 8 + 2 * static_cast<int>(pp.groups.size()));
        // The extra draws may open more of the cell's chromosomes, never others.
        QVERIFY(pf.groups.size() >= pp.groups.size() && pf.groups.size() <= size_t(chromosomes[c]));
        std::map<int32_t, int> drawnPlain, drawnFilled;
        size_t genes = 0;
        for (const auto& g : pp.groups)
          for (int32_t tok : g) ++drawnPlain[tok];
        for (const auto& g : pf.groups) {
          genes += g.size();
          for (int32_t tok : g) ++drawnFilled[tok];
          QVERIFY(std::is_sorted(g.begin(), g.end(), [&](int32_t x, int32_t y) {  // genomic order kept
            return t.rank[static_cast<size_t>(x - 100)] < t.rank[static_cast<size_t>(y - 100)];
          }));
        }
        QCOMPARE(genes, 8 + 2 * (3 - pf.groups.size()));  // 2 more genes per missing chromosome
        for (const auto& [tok, k] : drawnPlain) QVERIFY(drawnFilled[tok] >= k);  // the first 8 draws stay
      }
    // Off (the embedder's sentence): unchanged by the option's existence.
    SentenceOptions off = o;
    off.fixedLength = 0;
    SentenceBuilder again(t, off);
    std::vector<int32_t> cols = {0, 1, 2}, a(40), b2(40);
    std::vector<float> vals = {1, 2, 3};
    plain.build(cols.data(), vals.data(), 3, 7, a.data());
    again.build(cols.data(), vals.data(), 3, 7, b2.data());
    QCOMPARE(a, b2);
  }

  void reproducibleFromSeedAndCell() {
    GeneTable t = makeTable();
    SentenceOptions o;
    o.sampleSize = 128;
    o.padLength = 160;
    std::vector<int32_t> cols = {0, 1, 2, 3, 4, 6, 7};
    std::vector<float> vals = {3, 3, 3, 3, 3, 3, 3};
    SentenceBuilder a(t, o), b(t, o);
    std::vector<int32_t> s1(160), s2(160), s3(160);
    a.build(cols.data(), vals.data(), 7, 9, s1.data());
    // another builder, other cells built in between: the same sentence for cell 9
    b.build(cols.data(), vals.data(), 7, 3, s3.data());
    b.build(cols.data(), vals.data(), 7, 9, s2.data());
    QCOMPARE(s1, s2);
    QVERIFY(s1 != s3);
    o.seed = 1;
    SentenceBuilder c(t, o);
    c.build(cols.data(), vals.data(), 7, 9, s3.data());
    QVERIFY(s1 != s3);
  }

  void drawsFollowLog1pWeights() {
    GeneTable t = makeTable();
    SentenceOptions o;
    o.sampleSize = 1024;
    o.padLength = 1536;
    SentenceBuilder b(t, o);
    std::vector<int32_t> cols = {2, 4};      // same chromosome
    std::vector<float> vals = {1, 1096};     // log1p: 0.693 vs 7.0 -> share 0.0901
    std::vector<int32_t> s(1536);
    double low = 0;
    const int cells = 200;
    for (int cell = 0; cell < cells; ++cell) {
      int len = b.build(cols.data(), vals.data(), 2, static_cast<uint64_t>(cell), s.data());
      QCOMPARE(len, 1 + 1024 + 2);
      low += std::count(s.begin(), s.begin() + len, 102);
    }
    const double share = low / (1024.0 * cells);
    QVERIFY2(std::abs(share - 0.0901) < 0.005, qPrintable(QString::number(share)));
  }

  void chromosomeOrderIsShuffled() {
    GeneTable t = makeTable();
    SentenceOptions o;
    o.sampleSize = 32;
    o.padLength = 64;
    SentenceBuilder b(t, o);
    std::vector<int32_t> cols = {0, 1, 3};
    std::vector<float> vals = {5, 5, 5};
    std::set<std::vector<int32_t>> orders;
    std::vector<int32_t> s(64);
    for (int cell = 0; cell < 60; ++cell) {
      int len = b.build(cols.data(), vals.data(), 3, static_cast<uint64_t>(cell), s.data());
      orders.insert(parse(s, len, o.chromTokenOffset).chromOrder);
    }
    QCOMPARE(int(orders.size()), 6);  // all 3! orders occur
  }

  void noMatchedGenes() {
    GeneTable t = makeTable();
    SentenceOptions o;
    SentenceBuilder b(t, o);
    std::vector<int32_t> cols = {5, 6};
    std::vector<float> vals = {10, 0};
    std::vector<int32_t> s(static_cast<size_t>(o.padLength), 9);
    QCOMPARE(b.build(cols.data(), vals.data(), 2, 0, s.data()), 0);
    QCOMPARE(s[0], kPadToken);
  }
};

QTEST_APPLESS_MAIN(TestTokenizer)
#include "test_tokenizer.moc"
