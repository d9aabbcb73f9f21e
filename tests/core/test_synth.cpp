// The synthetic atlas as a user sees it through anndata: every dataset opens, carries the
// promised obs columns, looks like droplet data (sparsity, library sizes, batch effects, a
// kidney-enriched Norn population with its markers), is reproducible from its seed, streams in
// bounded memory, and its text assets (CSV, pickle, manifest) are what Python reads.
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "uce/core/pickle_writer.h"
#include "test_support.h"
#include "uce/core/error.h"
#include "uce/core/synth.h"

using uce::ErrorKind;
using uce::SynthAtlas;
using uce::SynthOptions;

namespace {

SynthOptions smallOptions(uint64_t seed) {
  SynthOptions o;
  o.cells = 3000;
  o.genesPerSpecies = 1500;
  o.tokenDim = 32;
  o.seed = seed;
  o.genePositionsCsv = UCE_GENE_POSITIONS;
  o.chunkCells = 256;  // several chunks per dataset, so the chunked path is what is tested
  return o;
}

QJsonObject pythonJson(const QString& script) {
  QString out, err;
  const int rc = uce::test::python(script, &out, &err);
  if (rc != 0) qWarning("python failed (%d): %s", rc, qPrintable(err));
  QJsonParseError pe;
  QJsonDocument doc = QJsonDocument::fromJson(out.toUtf8(), &pe);
  if (doc.isNull()) qWarning("not JSON: %s\n%s", qPrintable(out.left(2000)), qPrintable(err));
  return doc.object();
}

// Peak resident memory of this process so far, in KiB (VmHWM).
long peakRssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

QString py(const QString& s) { return "r'" + s + "'"; }

}  // namespace

class TestSynth : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void initTestCase() {
    QVERIFY(dir_.isValid());
    SynthAtlas atlas(smallOptions(11));
    names_ = atlas.datasetNames();
    QCOMPARE(names_.size(), size_t{6});
    const auto infos = atlas.writeDatasets((dir_.path() + "/a").toStdString());
    QCOMPARE(infos.size(), names_.size());
    int64_t total = 0;
    for (const auto& i : infos) {
      QVERIFY(QFile::exists(QString::fromStdString(i.path)));
      total += i.cells;
    }
    QCOMPARE(total, int64_t{3000});
  }

  // What a biologist checks first: it opens, it has the labels, it looks like 10x data.
  void datasetsLookLikeDropletData() {
    const QString script = R"PY(
import json, glob, os, warnings
warnings.filterwarnings('ignore')
import anndata, numpy as np
out = {}
for f in sorted(glob.glob(os.path.join(%1, '*.h5ad'))):
    a = anndata.read_h5ad(f)
    X = a.X.tocsr()
    lib = np.asarray(X.sum(1)).ravel()
    obs = a.obs
    d = {'shape': list(a.shape), 'columns': list(obs.columns),
         'categorical': [c for c in obs.columns if str(obs[c].dtype) == 'category'],
         'zeros': float(1 - X.nnz / (a.shape[0] * a.shape[1])),
         'lib_median': float(np.median(lib)), 'lib_min': float(lib.min()),
         'integers': bool(np.all(X.data == np.round(X.data))) and bool(np.all(X.data > 0)),
         'n_types': int(obs['cell_type'].nunique()),
         'coarse': sorted(obs['coarse_cell_type'].cat.categories.tolist()),
         'species': obs['species'].cat.categories.tolist(),
         'tissue': obs['tissue'].cat.categories.tolist(),
         'diseases': sorted(obs['disease'].cat.categories.tolist()),
         'norn': float((obs['cell_type'] == 'Norn cell').mean()),
         'var_unique': bool(a.var_names.is_unique), 'obs_unique': bool(a.obs_names.is_unique),
         'seed': int(a.uns['synth']['seed']), 'version': str(a.uns['synth']['version']),
         'first_gene_title': a.var_names[len(a.var_names) // 2]}
    libs = {b: float(lib[(obs['batch'] == b).values].mean()) for b in obs['batch'].cat.categories}
    d['batch_lib_ratio'] = max(libs.values()) / min(libs.values())
    norn = (obs['cell_type'] == 'Norn cell').values
    epo = [g for g in a.var_names if g.upper() == 'EPO'][0]
    e = np.asarray(X[:, a.var_names.get_loc(epo)].todense()).ravel()
    d['epo_norn'] = float(e[norn].mean()) if norn.any() else -1.0
    d['epo_rest'] = float(e[~norn].mean())
    d['has_dcn'] = ('DCN' in a.var_names) or ('Dcn' in a.var_names)
    out[os.path.basename(f)[:-5]] = d
print(json.dumps(out))
)PY";
    const QJsonObject all = pythonJson(script.arg(py(dir_.path() + "/a")));
    QCOMPARE(all.size(), 6);
    for (const auto& name : names_) {
      const QJsonObject d = all.value(QString::fromStdString(name)).toObject();
      QVERIFY2(!d.isEmpty(), name.c_str());
      const QString n = QString::fromStdString(name);
      QCOMPARE(d["shape"].toArray()[0].toInt(), 500);
      QCOMPARE(d["shape"].toArray()[1].toInt(), 1500);
      for (const char* col : {"cell_type", "coarse_cell_type", "tissue", "species", "batch", "disease"}) {
        QVERIFY2(d["columns"].toArray().contains(QString(col)), col);
        QVERIFY2(d["categorical"].toArray().contains(QString(col)), col);
      }
      const double zeros = d["zeros"].toDouble();
      QVERIFY2(zeros > 0.80 && zeros < 0.95, qPrintable(n + QString(": zeros %1").arg(zeros)));
      const double lib = d["lib_median"].toDouble();
      QVERIFY2(lib > 1000 && lib < 8000, qPrintable(n + QString(": median library %1").arg(lib)));
      QVERIFY(d["lib_min"].toDouble() > 50);
      QVERIFY2(d["integers"].toBool(), "counts are positive integers");
      QVERIFY2(d["n_types"].toInt() >= 10, qPrintable(n));
      QVERIFY(d["coarse"].toArray().contains(QString("immune")));
      QVERIFY(d["coarse"].toArray().contains(QString("stromal")));
      QCOMPARE(d["species"].toArray()[0].toString(), n.section('_', 0, 0));
      QCOMPARE(d["tissue"].toArray()[0].toString(), n.section('_', 1, 1));
      QVERIFY(d["diseases"].toArray().contains(QString("normal")));
      QCOMPARE(d["diseases"].toArray().size(), 2);
      QVERIFY(d["var_unique"].toBool());
      QVERIFY(d["obs_unique"].toBool());
      QCOMPARE(d["seed"].toInt(), 11);
      QVERIFY(!d["version"].toString().isEmpty());
      QVERIFY(d["has_dcn"].toBool());
      // Library-size batch effect: donors differ clearly in depth.
      QVERIFY2(d["batch_lib_ratio"].toDouble() > 1.4,
               qPrintable(n + QString(": batch library ratio %1").arg(d["batch_lib_ratio"].toDouble())));
    }
    // Norn cells: ~5% of kidney, ~0.5% of lung and heart, in both species.
    for (const char* sp : {"human", "mouse"}) {
      const double kidney = all[QString(sp) + "_kidney"].toObject()["norn"].toDouble();
      const double lung = all[QString(sp) + "_lung"].toObject()["norn"].toDouble();
      const double heart = all[QString(sp) + "_heart"].toObject()["norn"].toDouble();
      QVERIFY2(kidney > 0.025 && kidney < 0.09, qPrintable(QString("%1 kidney Norn %2").arg(sp).arg(kidney)));
      QVERIFY(kidney > 2 * lung);
      QVERIFY(kidney > 2 * heart);
      // Their marker EPO is theirs.
      const QJsonObject k = all[QString(sp) + "_kidney"].toObject();
      QVERIFY2(k["epo_norn"].toDouble() > 20 * k["epo_rest"].toDouble() && k["epo_norn"].toDouble() > 0.5,
               qPrintable(QString("EPO in Norn %1 vs rest %2").arg(k["epo_norn"].toDouble()).arg(k["epo_rest"].toDouble())));
    }
    QVERIFY(all["human_kidney"].toObject()["lib_median"].toDouble() > 0);
  }

  // Mouse genes are Title-case symbols; the Norn markers are there under mouse names.
  void mouseUsesMouseSymbols() {
    const QString script = R"PY(
import json, warnings
warnings.filterwarnings('ignore')
import anndata
a = anndata.read_h5ad(%1)
h = anndata.read_h5ad(%2)
v = list(a.var_names)
print(json.dumps({'markers': [g in v for g in ['Dcn', 'Lpar1', 'Col1a1', 'Cxcl12', 'Cfh', 'Cxcl14', 'Epo']],
                  'upper': sum(1 for g in v if g.isupper() and any(c.isalpha() for c in g)),
                  'human_markers': [g in h.var_names for g in ['DCN', 'LPAR1', 'COL1A1', 'CXCL12', 'CFH', 'CXCL14', 'EPO']],
                  'shared_upper': len(set(g.upper() for g in v) & set(h.var_names)), 'n': len(v)}))
)PY";
    const QJsonObject d = pythonJson(script.arg(py(dir_.path() + "/a/mouse_kidney.h5ad"),
                                                py(dir_.path() + "/a/human_kidney.h5ad")));
    for (const auto& v : d["markers"].toArray()) QVERIFY(v.toBool());
    for (const auto& v : d["human_markers"].toArray()) QVERIFY(v.toBool());
    QVERIFY2(d["upper"].toInt() < d["n"].toInt() / 100, "mouse symbols are Title-case");
    const double shared = d["shared_upper"].toDouble() / d["n"].toDouble();
    QVERIFY2(shared > 0.75 && shared < 0.95, qPrintable(QString("homolog share %1").arg(shared)));
  }

  // Same seed: identical matrices; another seed: different ones.
  void seedDeterminesTheData() {
    {
      SynthOptions o = smallOptions(11);
      o.threads = 1;  // thread count must not matter either
      SynthAtlas(o).writeDatasets((dir_.path() + "/b").toStdString());
    }
    SynthAtlas(smallOptions(12)).writeDatasets((dir_.path() + "/c").toStdString());
    const QString script = R"PY(
import json, glob, os, hashlib
import h5py
def digest(f):
    h = hashlib.sha256()
    with h5py.File(f, 'r') as g:
        for k in ('data', 'indices', 'indptr'):
            h.update(g['X'][k][:].tobytes())
        h.update(g['obs']['cell_type']['codes'][:].tobytes())
    return h.hexdigest()
out = {}
for tag in ('a', 'b', 'c'):
    out[tag] = {os.path.basename(f): digest(f) for f in sorted(glob.glob(os.path.join(%1, tag, '*.h5ad')))}
print(json.dumps(out))
)PY";
    const QJsonObject d = pythonJson(script.arg(py(dir_.path())));
    const QJsonObject a = d["a"].toObject(), b = d["b"].toObject(), c = d["c"].toObject();
    QCOMPARE(a.size(), 6);
    QCOMPARE(b.size(), 6);
    QCOMPARE(c.size(), 6);
    for (const auto& key : a.keys()) {
      QCOMPARE(a[key].toString(), b[key].toString());
      QVERIFY2(a[key].toString() != c[key].toString(), qPrintable(key));
    }
  }

  // --type-genes: each type switches on genes that are silent in the others, so many more
  // genes tell the types apart than the few named markers of the classic world (the demo world
  // uses this, so that the UCE objective rewards a model for knowing the cell's type).
  void typeGenesAreOnInTheirTypeOnly() {
    for (int64_t n : {int64_t{0}, int64_t{60}}) {
      SynthOptions o = smallOptions(5);
      o.cells = 2000;
      o.species = {"human"};
      o.tissues = {"kidney"};
      o.typeGenes = n;
      SynthAtlas(o).writeDatasets((dir_.path() + "/t" + QString::number(n)).toStdString());
    }
    const QString script = R"PY(
import json, os
import anndata, numpy as np
out = {}
for n in ('0', '60'):
    a = anndata.read_h5ad(os.path.join(%1, 't' + n, 'human_kidney.h5ad'))
    det = (a.X.tocsr() > 0)
    t = a.obs['cell_type'].astype(str).values
    types = [u for u in np.unique(t) if (t == u).sum() >= 30]
    rates = np.array([np.asarray(det[t == u].mean(0)).ravel() for u in types])
    spec = []
    for i in range(len(types)):
        others = np.delete(rates, i, 0).max(0)
        spec.append(int(((rates[i] > 0.5) & (others < 0.1)).sum()))
    zeros = float(1 - det.nnz / (det.shape[0] * det.shape[1]))
    out[n] = {'specific': float(np.mean(spec)), 'min_specific': int(min(spec)), 'zeros': zeros,
              'recorded': int(a.uns['synth']['type_genes'])}
print(json.dumps(out))
)PY";
    const QJsonObject d = pythonJson(script.arg(py(dir_.path())));
    const double classic = d["0"].toObject()["specific"].toDouble();
    const double on = d["60"].toObject()["specific"].toDouble();
    qInfo("genes specific to a type (>50%% of its cells, <10%% of every other type's): classic %.1f, "
          "--type-genes 60 %.1f (fewest %d)", classic, on, d["60"].toObject()["min_specific"].toInt());
    QVERIFY2(on >= 15 && on >= 2.5 * classic, qPrintable(QString("classic %1, type genes %2").arg(classic).arg(on)));
    QVERIFY(d["60"].toObject()["min_specific"].toInt() >= 8);
    // The file says which world it is from: uns["synth"]["type_genes"].
    QCOMPARE(d["0"].toObject()["recorded"].toInt(), 0);
    QCOMPARE(d["60"].toObject()["recorded"].toInt(), 60);
    // Still droplet-like: the share of zeros stays calibrated.
    const double zeros = d["60"].toObject()["zeros"].toDouble();
    QVERIFY2(zeros > 0.8 && zeros < 0.95, qPrintable(QString("zeros %1").arg(zeros)));
  }

  // 80,000 cells need no more memory than 20,000: cells stream to disk chunk by chunk.
  void memoryIsBoundedByTheChunk() {
    SynthOptions o = smallOptions(3);
    o.genesPerSpecies = 2000;
    o.chunkCells = 4096;
    o.species = {"human"};
    o.tissues = {"kidney"};
    o.cells = 20000;
    SynthAtlas small(o);
    const auto s = small.writeDatasets((dir_.path() + "/m20").toStdString());
    const long after20 = peakRssKb();
    o.cells = 80000;
    SynthAtlas big(o);
    const auto b = big.writeDatasets((dir_.path() + "/m80").toStdString());
    const long after80 = peakRssKb();
    QCOMPARE(b.size(), size_t{1});
    QCOMPARE(b[0].cells, int64_t{80000});
    const double xMiB = static_cast<double>(b[0].nnz) * 8.0 / 1048576.0;  // values + indices
    const double growthMiB = static_cast<double>(after80 - after20) / 1024.0;
    qInfo("peak RSS after 20k cells %.0f MiB, after 80k %.0f MiB; X of 80k cells is %.0f MiB",
          after20 / 1024.0, after80 / 1024.0, xMiB);
    QVERIFY2(xMiB > 60, "the test needs an X much larger than a chunk");
    QVERIFY2(growthMiB < 0.25 * xMiB, qPrintable(QString("peak RSS grew by %1 MiB").arg(growthMiB)));
    QFile::remove(QString::fromStdString(s[0].path));
    QFile::remove(QString::fromStdString(b[0].path));
  }

  // Protein embeddings carry homology; chromosome tokens follow the spec's coding.
  void assetContents() {
    SynthAtlas atlas(smallOptions(11));
    const auto& a = atlas.assets();
    QCOMPARE(a.species.size(), size_t{2});
    QCOMPARE(a.species[0].name, std::string("human"));
    QCOMPARE(a.species[0].offset, int64_t{0});
    QCOMPARE(a.species[1].offset, static_cast<int64_t>(a.species[0].tokens.size()));
    QCOMPARE(a.species[1].tokens.size(), size_t{1500});
    const size_t D = static_cast<size_t>(a.tokenDim);
    std::map<std::string, size_t> human;
    for (size_t i = 0; i < a.species[0].tokens.size(); ++i) human[a.species[0].tokens[i]] = i;
    auto cosine = [&](const float* x, const float* y) {
      double xy = 0, xx = 0, yy = 0;
      for (size_t d = 0; d < D; ++d) {
        xy += double(x[d]) * y[d];
        xx += double(x[d]) * x[d];
        yy += double(y[d]) * y[d];
      }
      return xy / std::sqrt(xx * yy);
    };
    size_t homologs = 0;
    double minHomolog = 1;
    for (size_t i = 0; i < a.species[1].tokens.size(); ++i) {
      auto it = human.find(a.species[1].tokens[i]);
      if (it == human.end()) continue;
      ++homologs;
      minHomolog = std::min(minHomolog, cosine(&a.species[1].embeddings[i * D],
                                               &a.species[0].embeddings[it->second * D]));
    }
    QVERIFY(homologs > 1000 && homologs < 1500);
    QVERIFY2(minHomolog > 0.9, qPrintable(QString::number(minHomolog)));
    double sumAbs = 0;
    for (size_t i = 0; i < 500; ++i)
      sumAbs += std::fabs(cosine(&a.species[0].embeddings[i * D], &a.species[0].embeddings[(i + 700) * D]));
    QVERIFY(sumAbs / 500 < 0.3);
    // chromNames: sorted unique species_chromosome over all rows.
    std::set<std::string> names;
    for (const auto& r : a.chromRows) names.insert(r.species + "_" + r.chromosome);
    QCOMPARE(std::vector<std::string>(names.begin(), names.end()), a.chromNames);
    QCOMPARE(a.chromEmbeddings.size(), a.chromNames.size() * D);
    QCOMPARE(a.totalTokens(), a.geneTokens() + static_cast<int64_t>(a.chromNames.size()));

    writeSynthTextAssets(a, (dir_.path() + "/assets").toStdString());
    const QString script = R"PY(
import json, pickle, os
import pandas as pd
d = %1
c = pd.read_csv(os.path.join(d, 'species_chrom.csv'))
off = pickle.load(open(os.path.join(d, 'species_offsets.pkl'), 'rb'))
m = json.load(open(os.path.join(d, 'manifest.json')))
codes = pd.Categorical(c['species'] + '_' + c['chromosome'].astype(str))
print(json.dumps({'columns': list(c.columns), 'rows': len(c), 'offsets': off,
                  'n_chrom': len(codes.categories), 'manifest': m,
                  'mouse_dcn': c[(c.species == 'mouse') & (c.gene_symbol == 'Dcn')].shape[0]}))
)PY";
    const QJsonObject d = pythonJson(script.arg(py(dir_.path() + "/assets")));
    QCOMPARE(d["columns"].toArray(), QJsonArray({"species", "gene_symbol", "chromosome", "start"}));
    QCOMPARE(d["rows"].toInt(), 3000);
    QCOMPARE(d["offsets"].toObject()["human"].toInt(), 0);
    QCOMPARE(d["offsets"].toObject()["mouse"].toInt(), 1500);
    QCOMPARE(d["n_chrom"].toInt(), static_cast<int>(a.chromNames.size()));
    QCOMPARE(d["mouse_dcn"].toInt(), 1);
    const QJsonObject m = d["manifest"].toObject();
    QCOMPARE(m["token_dim"].toInt(), 32);
    QCOMPARE(m["chrom_token_offset"].toInt(), 3000);
    QCOMPARE(m["n_tokens"].toInt(), 3000 + static_cast<int>(a.chromNames.size()));
    QCOMPARE(m["n_chrom_tokens"].toInt(), static_cast<int>(a.chromNames.size()));
    QCOMPARE(m["nhead"].toInt(), 4);
    QCOMPARE(m["species"].toArray().size(), 2);
    QCOMPARE(m["species"].toArray()[1].toObject()["embedding_file"].toString(),
             QString("protein_embeddings/Mus_musculus.GRCm39.gene_symbol_to_embedding_ESM2.pt"));
  }

  // The pickle is byte-identical to CPython's protocol-2 pickle of the same dict.
  void pickleMatchesCPython() {
    std::vector<std::pair<std::string, int64_t>> items = {
        {"human", 0}, {"mouse", 255}, {"frog", 256}, {"zebrafish", 65535}, {"pig", 65536},
        {"neg", -1}, {"big", int64_t{1} << 31}, {"bigger", int64_t{1} << 40},
        {"mostneg", INT64_MIN}, {"caf\xc3\xa9", 143574}};
    for (int i = 0; i < 1200; ++i) items.emplace_back("k" + std::to_string(i), i * 37);
    const std::string ours = uce::pickleDictStrInt(items);
    QString literal = "{";
    for (const auto& [k, v] : items)
      literal += "'" + QString::fromStdString(k) + "': " + QString::number(v) + ",";
    literal += "}";
    QString out;
    QCOMPARE(uce::test::python("import pickle,sys; sys.stdout.write(pickle.dumps(" + literal +
                                   ", protocol=2).hex())",
                               &out),
             0);
    QCOMPARE(QByteArray::fromStdString(ours).toHex(), out.toLatin1());
    QCOMPARE(QByteArray::fromStdString(uce::pickleDictStrInt({})).toHex(), QByteArray("80027d71002e"));
  }

  void badOptionsAreExplained() {
    auto kindOf = [](SynthOptions o) {
      try {
        SynthAtlas a(o);
      } catch (const uce::Error& e) {
        return std::make_pair(e.kind(), std::string(e.what()));
      }
      return std::make_pair(ErrorKind::Cancelled, std::string());
    };
    SynthOptions o = smallOptions(1);
    o.genesPerSpecies = 10;
    auto r = kindOf(o);
    QCOMPARE(r.first, ErrorKind::InvalidArgument);
    QVERIFY(r.second.find("--genes") != std::string::npos);
    o = smallOptions(1);
    o.genesPerSpecies = 1'000'000;
    r = kindOf(o);
    QCOMPARE(r.first, ErrorKind::InvalidArgument);
    QVERIFY(r.second.find("human genes in the gene-position CSV") != std::string::npos);
    o = smallOptions(1);
    o.genePositionsCsv = (dir_.path() + "/missing.csv").toStdString();
    r = kindOf(o);
    QCOMPARE(r.first, ErrorKind::Io);
    QVERIFY(r.second.find("missing.csv") != std::string::npos);
    o = smallOptions(1);
    o.tissues = {"liver"};
    QCOMPARE(kindOf(o).first, ErrorKind::InvalidArgument);
    o = smallOptions(1);
    o.cells = 3;
    QCOMPARE(kindOf(o).first, ErrorKind::InvalidArgument);
    // A CSV without the needed columns.
    const QString bad = dir_.path() + "/bad.csv";
    uce::test::writeAll(bad, "symbol,chr\nA,1\n");
    o = smallOptions(1);
    o.genePositionsCsv = bad.toStdString();
    r = kindOf(o);
    QCOMPARE(r.first, ErrorKind::Format);
    QVERIFY(r.second.find("gene_symbol") != std::string::npos);
    o = smallOptions(1);
    o.typeGenes = 1000;  // more than a quarter of the 1,500 genes
    r = kindOf(o);
    QCOMPARE(r.first, ErrorKind::InvalidArgument);
    QVERIFY(r.second.find("--type-genes") != std::string::npos);
  }

 private:
  QTemporaryDir dir_;
  std::vector<std::string> names_;
};

QTEST_APPLESS_MAIN(TestSynth)
#include "test_synth.moc"
