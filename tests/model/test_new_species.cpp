// A species the token table lacks, as the release's new-species recipe adds it: a synthetic
// human bundle, a "vole" made of the mouse genes of another synth run (its own protein-embedding
// .pt with Title-case keys and a position CSV in the notebook's layout), then: the extended
// table holds the old rows unchanged, the vole rows and the chromosome rows Python's torch
// draws after manual_seed; embedding vole cells works, the extension is saved and reused with
// identical embeddings, human embeddings are bit-identical before and after, and bad inputs
// give clear errors.
#include <QDir>
#include <QTemporaryDir>
#include <QtTest>

#include <cstring>

#include "test_support.h"
#include "uce/core/dataset.h"
#include "uce/core/error.h"
#include "uce/model/assets.h"
#include "uce/model/embedder.h"
#include "uce/model/new_species.h"
#include "uce/model/torch_file.h"

using namespace uce::model;
using uce::test::cli;
using uce::test::python;

class TestNewSpecies : public QObject {
  Q_OBJECT
  QTemporaryDir tmp_;
  QString human_, mouse_, assets_, model_, volePt_, voleCsv_;
  const int64_t seed_ = 10090;  // what the release asks for: the NCBI taxonomy id

  QString path(const QString& name) const { return tmp_.filePath(name); }

  NewSpeciesOptions vole() const {
    NewSpeciesOptions o;
    o.name = "vole";
    o.proteinEmbeddings = volePt_.toStdString();
    o.positionsCsv = voleCsv_.toStdString();
    o.seed = seed_;
    return o;
  }

  EmbedOptions embedOptions(const QString& input, const QString& out, const QString& assets,
                            const std::string& species) const {
    EmbedOptions o;
    o.input = input.toStdString();
    o.output = out.toStdString();
    o.assetsDir = assets.toStdString();
    o.modelFile = model_.toStdString();
    o.species = species;
    o.sampleSize = 256;
    o.padLength = 320;
    o.chunkCells = 128;
    o.seed = 3;
    o.threads = 2;
    return o;
  }

  static uce::DenseMatrix xuce(const QString& file) { return uce::openDataset(file.toStdString())->readObsm("X_uce"); }

  // Same bits (NaN rows of filtered cells included).
  static bool identical(const uce::DenseMatrix& a, const uce::DenseMatrix& b) {
    return a.rows == b.rows && a.cols == b.cols && a.data.size() == b.data.size() &&
           std::memcmp(a.data.data(), b.data.data(), a.data.size() * sizeof(float)) == 0;
  }

  // Across processes the CPU GEMM may split work differently: equal to float rounding.
  static bool close(const uce::DenseMatrix& a, const uce::DenseMatrix& b, double tol = 1e-6) {
    if (a.rows != b.rows || a.cols != b.cols) return false;
    for (size_t i = 0; i < a.data.size(); ++i) {
      if (std::isnan(a.data[i]) != std::isnan(b.data[i])) return false;
      if (!std::isnan(a.data[i]) && std::abs(a.data[i] - b.data[i]) > tol) return false;
    }
    return true;
  }

  template <class F>
  static QString errorOf(F&& f) {
    try {
      f();
    } catch (const uce::Error& e) {
      return QString::fromStdString(e.what());
    }
    return "(no error)";
  }

  static void sameTokens(const SpeciesTokens& a, const SpeciesTokens& b) {
    QCOMPARE(a.offset, b.offset);
    QCOMPARE(a.chromTokenOffset, b.chromTokenOffset);
    QVERIFY(a.genes == b.genes);
    QVERIFY(a.chromPos == b.chromPos);
  }

 private Q_SLOTS:
  void initTestCase() {
    QVERIFY(tmp_.isValid());
    QString out, err;
    for (const char* sp : {"human", "mouse"}) {
      int rc = cli({"synth", "--out", path(sp), "--cells", "300", "--genes", "800", "--token-dim", "32", "--species", sp,
                    "--tissues", "kidney", "--seed", "11", "--quiet"},
                   &out, &err);
      QVERIFY2(rc == 0, qPrintable(err));
    }
    human_ = path("human/human_kidney.h5ad");
    mouse_ = path("mouse/mouse_kidney.h5ad");
    QVERIFY(QFile::exists(human_) && QFile::exists(mouse_));
    assets_ = path("human/assets");
    model_ = path("model.torch");
    int rc = cli({"init-model", "--assets", assets_, "--out", model_, "--layers", "2", "--d-model", "32", "--nhead", "4",
                  "--d-hid", "64", "--output-dim", "24", "--seed", "5"},
                 &out, &err);
    QVERIFY2(rc == 0, qPrintable(err));

    // The "vole": the mouse genes with their Title-case symbols, as a plain dict like the
    // release's .pt files; positions as the notebook writes them, 5 genes without one. Plus
    // the bad inputs the error tests use.
    volePt_ = path("Microtus_arvalis.test.gene_symbol_to_embedding_ESM2.pt");
    voleCsv_ = path("vole_to_chrom_pos.csv");
    rc = python(QString(R"(
import glob, torch, pandas as pd
pe = torch.load(glob.glob('%1/protein_embeddings/Mus_musculus*.pt')[0])
pos = pd.read_csv('%1/species_chrom.csv', dtype={'chromosome': str})
pos = pos[pos.species == 'mouse']
name = {g.upper(): g for g in pos.gene_symbol}
torch.save({name.get(k, k): v.clone() for k, v in pe.items()}, '%2')
p = pos[['gene_symbol', 'chromosome', 'start']].copy()
p = p[~p.gene_symbol.str.upper().isin(list(pe.keys())[:5])]
p['gene_symbol'] = p.gene_symbol.str.upper()
p['species'] = 'vole'
p.sort_values(['chromosome', 'start']).to_csv('%3', index=False)
torch.save(torch.zeros(3, 32), '%4/bad_tensor.pt')
torch.save({'Dcn': torch.zeros(16)}, '%4/bad_dim.pt')
torch.save({'Dcn': 1.5}, '%4/bad_value.pt')
p[['gene_symbol', 'chromosome']].to_csv('%4/no_start.csv', index=False)
p[['start', 'chromosome', 'gene_symbol']].to_csv('%4/no_species_column.csv', index=False)
q = p.copy(); q['species'] = 'mouse'; q.to_csv('%4/other_species.csv', index=False)
)")
                    .arg(path("mouse/assets"), volePt_, voleCsv_, tmp_.path()),
                &out, &err);
    QVERIFY2(rc == 0, qPrintable(err + out));
  }

  void extendedTableAsTheReleaseDrawsIt() {
    const QString ext = path("ext");
    NewSpeciesReport r = addSpecies(assets_.toStdString(), vole(), ext.toStdString());
    QVERIFY(!r.reused);
    const int64_t baseRows = AssetBundle(assets_.toStdString()).tokenTable().size(0);
    QCOMPARE(r.offset, baseRows);  // appended after every existing row
    QCOMPARE(r.genes, int64_t(800));
    QCOMPARE(r.chromTokenOffset, baseRows + 800);
    QVERIFY(r.chromTokens > 5);
    QCOMPARE(r.tokens, r.chromTokenOffset + r.chromTokens);
    QCOMPARE(r.seed, uint64_t(seed_));
    QCOMPARE(r.genesWithoutPosition, int64_t(5));
    // Python's torch reads every file; the old rows, offsets and species_chrom.csv are as they
    // were; the chromosome rows are what torch.manual_seed(seed); torch.normal(...) gives, in
    // the order of the release's categorical codes over the species' own position file.
    QString out, err;
    int rc = python(QString(R"(
import pickle, torch, pandas as pd
base, ext = '%1', '%2'
R, n = %3, 800
t0 = torch.load(base + '/all_tokens.torch'); t = torch.load(ext + '/all_tokens.torch')
assert t.dtype == torch.float32 and t.shape[0] == R + n + %4, t.shape
assert torch.equal(t[:R], t0)
o0 = pickle.load(open(base + '/species_offsets.pkl', 'rb')); o = pickle.load(open(ext + '/species_offsets.pkl', 'rb'))
assert o == dict(o0, vole=R), o
assert open(base + '/species_chrom.csv').read() == open(ext + '/species_chrom.csv').read()
pe = torch.load('%5')
assert torch.equal(t[R:R + n], torch.stack(list(pe.values())))
ns = pd.read_csv(ext + '/new_species.csv')
assert list(ns.species) == ['vole'] and int(ns.offset[0]) == R and int(ns.chrom_token_offset[0]) == R + n
assert torch.equal(torch.stack(list(torch.load(ext + '/' + ns.path[0]).values())), t[R:R + n])
pos = pd.read_csv(ext + '/' + ns.chrom_file[0], dtype={'chromosome': str})
assert list(pos.columns) == ['gene_symbol', 'chromosome', 'start', 'species']
cats = pd.Categorical(pos.species + '_' + pos.chromosome)
N = len(pos.chromosome.unique())
assert N == len(cats.categories) == %4
torch.manual_seed(%6)
chrom = torch.normal(mean=0, std=1, size=(N, 32))
assert torch.equal(t[R + n:], chrom)
print('ok')
)")
                        .arg(assets_, ext)
                        .arg(r.offset)
                        .arg(r.chromTokens)
                        .arg(volePt_)
                        .arg(seed_),
                    &out, &err);
    QVERIFY2(rc == 0 && out.contains("ok"), qPrintable(err + out));
    // The base bundle is untouched and has no trace of the vole.
    QVERIFY(!QFile::exists(assets_ + "/new_species.csv"));
    QVERIFY(QDir(tmp_.path()).entryList({"ext.tmp-*"}, QDir::AllEntries | QDir::Hidden).isEmpty());
  }

  void newGeneTokensPointAtOwnRows() {
    AssetBundle base(assets_.toStdString()), ext(path("ext").toStdString());
    const SpeciesTokens& v = ext.species("vole");
    at::Tensor table = ext.tokenTable();
    NamedTensors pe = loadTensorDict(volePt_.toStdString());
    QCOMPARE(int64_t(v.genes.size()), int64_t(pe.size()));
    for (const auto& kv : pe) {
      QString g = QString::fromStdString(kv.first).toUpper();
      auto it = v.index.find(g.toStdString());
      QVERIFY(it != v.index.end());
      QVERIFY2(table[v.offset + it->second].equal(kv.second), qPrintable(g));
    }
    // Chromosome codes: index among the species' sorted chromosomes, tokens after its genes.
    std::vector<GenePosition> pos = readGenePositions(voleCsv_.toStdString(), "vole");
    std::vector<std::string> chroms = sortedChromosomes(pos);
    QCOMPARE(v.chromTokenOffset, v.offset + int64_t(v.genes.size()));
    QCOMPARE(v.chromTokenOffset + int64_t(chroms.size()), table.size(0));
    for (const auto& p : pos) {
      auto c = v.chromPos.at(p.symbol);
      QCOMPARE(chroms[size_t(c.first)], p.chromosome);
      QCOMPARE(c.second, p.start);
    }
    // Every species that was there keeps its tokens, genes and chromosomes.
    for (const std::string sp : {"human", "mouse"}) sameTokens(ext.species(sp), base.species(sp));
    QCOMPARE(ext.chromTokenOffset(), base.chromTokenOffset());
  }

  void chainedExtensionKeepsEarlierSpecies() {
    NewSpeciesOptions o = vole();
    o.name = "shrew";
    o.seed = -1;  // derived from the name
    o.positionsCsv = path("no_species_column.csv").toStdString();  // all rows are the species'
    const QString ext2 = path("ext2");
    NewSpeciesReport r = addSpecies(path("ext").toStdString(), o, ext2.toStdString());
    QCOMPARE(r.seed, defaultSpeciesSeed("shrew"));
    AssetBundle ext(path("ext").toStdString()), two(ext2.toStdString());
    QCOMPARE(r.offset, ext.tokenTable().size(0));
    for (const std::string sp : {"human", "mouse", "vole"}) sameTokens(two.species(sp), ext.species(sp));
    QVERIFY(two.tokenTable().narrow(0, 0, r.offset).equal(ext.tokenTable()));
    QCOMPARE(two.addedSpecies().size(), size_t(2));
    QCOMPARE(two.species("shrew").offset, r.offset);
  }

  void embedNewSpeciesSavedAndReused() {
    // First run: extends at load time and saves the bundle next to the output.
    EmbedOptions o = embedOptions(mouse_, path("vole1.h5ad"), assets_, "vole");
    o.newSpeciesEmbeddings = volePt_.toStdString();
    o.newSpeciesPositions = voleCsv_.toStdString();
    o.newSpeciesSeed = seed_;
    EmbedReport r1 = embedDataset(o);
    const QString saved = path("assets+vole");
    QVERIFY(r1.assetsExtended && !r1.extensionReused);
    QCOMPARE(QString::fromStdString(r1.assetsDir), saved);
    QVERIFY(QFile::exists(saved + "/new_species.csv") && QFile::exists(saved + "/all_tokens.torch"));
    QVERIFY(r1.cellsEmbedded > 250);
    QVERIFY(r1.genesMatched > 700);
    const uce::DenseMatrix e1 = xuce(path("vole1.h5ad"));
    QCOMPARE(e1.cols, int64_t(24));
    for (int64_t i = 0; i < e1.rows; ++i) {
      if (std::isnan(e1.data[size_t(i * 24)])) continue;
      double n = 0;
      for (int64_t d = 0; d < 24; ++d) n += double(e1.data[size_t(i * 24 + d)]) * e1.data[size_t(i * 24 + d)];
      QVERIFY(std::abs(std::sqrt(n) - 1) < 1e-5);
    }
    const auto savedTime = QFileInfo(saved + "/all_tokens.torch").lastModified();

    // Second run, same options: the saved extension is reused, not rebuilt.
    o.output = path("vole2.h5ad").toStdString();
    EmbedReport r2 = embedDataset(o);
    QVERIFY(r2.assetsExtended && r2.extensionReused);
    QCOMPARE(r2.newSpeciesOffset, r1.newSpeciesOffset);
    QCOMPARE(QFileInfo(saved + "/all_tokens.torch").lastModified(), savedTime);
    QVERIFY(identical(e1, xuce(path("vole2.h5ad"))));

    // Later runs just name the saved bundle.
    EmbedOptions p = embedOptions(mouse_, path("vole3.h5ad"), saved, "vole");
    EmbedReport r3 = embedDataset(p);
    QVERIFY(!r3.assetsExtended);
    QVERIFY(identical(e1, xuce(path("vole3.h5ad"))));

    // Another seed draws other chromosome tokens: other embeddings, and the saved bundle
    // (made with the first seed) is not silently reused.
    o.output = path("vole4.h5ad").toStdString();
    o.newSpeciesSeed = seed_ + 1;
    QVERIFY(errorOf([&] { embedDataset(o); }).contains("made from other files"));
    o.extendedAssetsDir = path("ext_seed2").toStdString();
    embedDataset(o);
    QVERIFY(!identical(e1, xuce(path("vole4.h5ad"))));
  }

  void existingSpeciesBitIdentical() {
    // model.torch carries the base table as pe_embedding; the extended table replaces it.
    embedDataset(embedOptions(human_, path("human_base.h5ad"), assets_, "human"));
    embedDataset(embedOptions(human_, path("human_ext.h5ad"), path("ext"), "human"));
    embedDataset(embedOptions(human_, path("human_ext2.h5ad"), path("ext2"), "human"));
    const uce::DenseMatrix a = xuce(path("human_base.h5ad"));
    QVERIFY(a.rows == 300);
    QVERIFY(identical(a, xuce(path("human_ext.h5ad"))));
    QVERIFY(identical(a, xuce(path("human_ext2.h5ad"))));
    embedDataset(embedOptions(mouse_, path("mouse_base.h5ad"), assets_, "mouse"));
    embedDataset(embedOptions(mouse_, path("mouse_ext.h5ad"), path("ext2"), "mouse"));
    QVERIFY(identical(xuce(path("mouse_base.h5ad")), xuce(path("mouse_ext.h5ad"))));
  }

  void clearErrors() {
    const std::string base = assets_.toStdString();
    auto with = [&](const QString& pt, const QString& csv, const QString& out) {
      NewSpeciesOptions o = vole();
      if (!pt.isEmpty()) o.proteinEmbeddings = pt.toStdString();
      if (!csv.isEmpty()) o.positionsCsv = csv.toStdString();
      return errorOf([&] { addSpecies(base, o, path(out).toStdString()); });
    };
    QString e = with(path("bad_tensor.pt"), "", "e1");
    QVERIFY2(e.contains("bad_tensor.pt") && e.contains("not a protein-embedding file") && e.contains("dict gene symbol"),
             qPrintable(e));
    e = with(path("bad_dim.pt"), "", "e2");
    QVERIFY2(e.contains("'Dcn'") && e.contains("[16]") && e.contains("32 values"), qPrintable(e));
    e = with(path("bad_value.pt"), "", "e3");
    QVERIFY2(e.contains("bad_value.pt") && e.contains("dict gene symbol"), qPrintable(e));
    e = with("", path("no_start.csv"), "e4");
    QVERIFY2(e.contains("no_start.csv") && e.contains("missing column 'start'") && e.contains("gene_symbol, chromosome"),
             qPrintable(e));
    e = with("", path("other_species.csv"), "e5");
    QVERIFY2(e.contains("no rows for species 'vole'") && e.contains("mouse"), qPrintable(e));
    e = with(path("missing.pt"), "", "e6");
    QVERIFY2(e.contains("missing.pt") && e.contains("not found"), qPrintable(e));
    for (const char* dir : {"e1", "e2", "e3", "e4", "e5", "e6"}) QVERIFY(!QFile::exists(path(dir)));

    NewSpeciesOptions o = vole();
    o.name = "human";
    e = errorOf([&] { addSpecies(base, o, path("e7").toStdString()); });
    QVERIFY2(e.contains("'human' is already in"), qPrintable(e));
    e = errorOf([&] { addSpecies(base, vole(), base); });
    QVERIFY2(e.contains("never modified"), qPrintable(e));
    e = errorOf([&] { addSpecies(base, vole(), path("human").toStdString()); });  // a folder with other things
    QVERIFY2(e.contains("does not hold species 'vole'"), qPrintable(e));

    // Without an extension, an unknown species lists the known ones and says what to give.
    EmbedOptions eo = embedOptions(mouse_, path("err.h5ad"), assets_, "vole");
    e = errorOf([&] { embedDataset(eo); });
    QVERIFY2(e.contains("unknown species 'vole'") && e.contains("human, mouse") && e.contains("--new-species-embeddings"),
             qPrintable(e));
    eo.newSpeciesEmbeddings = volePt_.toStdString();
    e = errorOf([&] { embedDataset(eo); });
    QVERIFY2(e.contains("--new-species-positions"), qPrintable(e));
  }

  void cliAddSpeciesThenEmbed() {
    const QString ext = path("cli_ext");
    QStringList add = {"add-species", "--assets", assets_, "--species", "vole", "--embeddings", volePt_,
                       "--positions", voleCsv_, "--out", ext, "--seed", QString::number(seed_)};
    QString out, err;
    int rc = cli(add, &out, &err);
    QVERIFY2(rc == 0, qPrintable(err + out));
    QVERIFY2(out.contains("800 gene tokens from row") && out.contains("uce embed --assets " + ext), qPrintable(out));
    rc = cli(add, &out, &err);
    QVERIFY2(rc == 0 && out.contains("nothing to do"), qPrintable(err + out));
    // embed with the same extension options finds it saved
    rc = cli({"embed", "--adata", mouse_, "--out", path("cli_vole.h5ad"), "--assets", assets_, "--model", model_,
              "--species", "vole", "--new-species-embeddings", volePt_, "--new-species-positions", voleCsv_,
              "--new-species-seed", QString::number(seed_), "--extended-assets", ext, "--sample-size", "256",
              "--pad-length", "320", "--seed", "3", "--chunk-cells", "128", "--threads", "2", "--quiet"},
             &out, &err);
    QVERIFY2(rc == 0 && out.contains("reused from " + ext), qPrintable(err + out));
    // Same inputs, same bundle contents: the API-made and CLI-made extensions embed alike.
    QVERIFY(close(xuce(path("vole1.h5ad")), xuce(path("cli_vole.h5ad"))));
    rc = python(QString(R"(
import anndata, numpy as np
a = anndata.read_h5ad('%1')
assert a.uns['uce']['species'] == 'vole' and a.obsm['X_uce'].shape == (300, 24)
)").arg(path("cli_vole.h5ad")),
                &out, &err);
    QVERIFY2(rc == 0, qPrintable(err + out));
    rc = cli({"add-species", "--assets", assets_, "--species", "vole", "--embeddings", path("bad_dim.pt"), "--positions",
              voleCsv_, "--out", path("cli_bad")},
             &out, &err);
    QVERIFY(rc == 1 && err.startsWith("error:") && err.contains("bad_dim.pt"));
  }
};

QTEST_GUILESS_MAIN(TestNewSpecies)
#include "test_new_species.moc"
