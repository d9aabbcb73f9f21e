// The asset bundle that `uce synth` writes, read the way users read the public release's
// files: Python's torch.load / pickle / pandas, and our own restricted loader. Keys come in
// token order, all_tokens rows match the dicts at their offsets, homologs share embeddings,
// and every gene of every dataset has a token.
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>
#include <torch/torch.h>

#include "test_support.h"
#include "uce/core/error.h"
#include "uce/model/asset_bundle.h"
#include "uce/model/torch_file.h"

namespace {

QJsonObject pythonJson(const QString& script) {
  QString out, err;
  const int rc = uce::test::python(script, &out, &err);
  if (rc != 0) qWarning("python failed (%d): %s", rc, qPrintable(err));
  QJsonDocument doc = QJsonDocument::fromJson(out.toUtf8());
  if (doc.isNull()) qWarning("not JSON: %s\n%s", qPrintable(out.left(2000)), qPrintable(err));
  return doc.object();
}

}  // namespace

class TestAssetBundle : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void initTestCase() {
    QVERIFY(dir_.isValid());
    QString out, err;
    const int rc = uce::test::cli({"synth", "--out", dir_.path(), "--cells", "1800", "--genes", "900",
                                   "--seed", "5", "--quiet"},
                                  &out, &err);
    QVERIFY2(rc == 0, qPrintable(err));
    // The CLI lists what it wrote: six datasets and the asset files.
    QCOMPARE(out.count(".h5ad"), 6);
    QVERIFY(out.contains("all_tokens.torch"));
    QVERIFY(out.contains("Homo_sapiens.GRCh38.gene_symbol_to_embedding_ESM2.pt"));
    QVERIFY(out.contains("Mus_musculus.GRCm39.gene_symbol_to_embedding_ESM2.pt"));
  }

  void pythonReadsTheBundle() {
    const QString script = QString(R"PY(
import json, glob, os, pickle, warnings
warnings.filterwarnings('ignore')
import torch, pandas as pd, numpy as np, anndata
d = r'%1'
a = os.path.join(d, 'assets')
man = json.load(open(os.path.join(a, 'manifest.json')))
off = pickle.load(open(os.path.join(a, 'species_offsets.pkl'), 'rb'))
chrom = pd.read_csv(os.path.join(a, 'species_chrom.csv'))
tok = torch.load(os.path.join(a, 'all_tokens.torch'))
res = {'manifest': man, 'offsets': off, 'chrom_columns': list(chrom.columns),
       'tokens_shape': list(tok.shape), 'tokens_dtype': str(tok.dtype)}
dicts = {}
for s in man['species']:
    e = torch.load(os.path.join(a, s['embedding_file']))
    dicts[s['name']] = e
    keys = list(e.keys())
    rows = chrom[chrom.species == s['name']]
    res[s['name']] = {
        'type': type(e).__name__, 'n': len(keys),
        'all_tensors': all(isinstance(v, torch.Tensor) and v.dtype == torch.float32 and
                           tuple(v.shape) == (man['token_dim'],) for v in e.values()),
        # Key order = token order: row offset + i of all_tokens is the i-th value.
        'rows_match': bool(torch.equal(torch.stack(list(e.values())), tok[s['offset']:s['offset'] + len(keys)])),
        'keys_upper': all(k == k.upper() for k in keys),
        'csv_order': [str(x).upper() for x in rows.gene_symbol] == keys,
    }
hk = dicts['human']; mk = dicts['mouse']
hv = torch.stack(list(hk.values())); hv = hv / hv.norm(dim=1, keepdim=True)
shared = [k for k in mk if k in hk]
cos_h = [float(torch.dot(mk[k], hk[k]) / (mk[k].norm() * hk[k].norm())) for k in shared]
g = torch.Generator().manual_seed(0)
i = torch.randint(0, hv.shape[0], (2000,), generator=g); j = torch.randint(0, hv.shape[0], (2000,), generator=g)
keep = i != j
rnd = (hv[i[keep]] * hv[j[keep]]).sum(1).abs()
res['homologs'] = len(shared); res['homolog_min_cos'] = min(cos_h)
res['random_mean_abs_cos'] = float(rnd.mean()); res['random_q99_abs_cos'] = float(rnd.quantile(0.99))
# Chromosome codes as the release computes them: pandas categorical codes.
codes = pd.Categorical(chrom['species'] + '_' + chrom['chromosome'].astype(str))
res['n_chrom_codes'] = len(codes.categories)
missing = {}
for f in sorted(glob.glob(os.path.join(d, '*.h5ad'))):
    ad = anndata.read_h5ad(f, backed='r')
    sp = ad.obs['species'].cat.categories[0]
    missing[os.path.basename(f)] = [g for g in ad.var_names if g.upper() not in dicts[sp]][:5]
res['missing'] = missing
print(json.dumps(res))
)PY")
                               .arg(dir_.path());
    const QJsonObject r = pythonJson(script);
    QVERIFY(!r.isEmpty());
    const QJsonObject man = r["manifest"].toObject();
    const int D = man["token_dim"].toInt();
    QCOMPARE(D, 256);
    QCOMPARE(man["nhead"].toInt(), 4);
    const int geneTokens = r["human"].toObject()["n"].toInt() + r["mouse"].toObject()["n"].toInt();
    QCOMPARE(geneTokens, 1800);
    QCOMPARE(man["chrom_token_offset"].toInt(), geneTokens);
    QCOMPARE(man["n_chrom_tokens"].toInt(), r["n_chrom_codes"].toInt());
    QCOMPARE(man["n_tokens"].toInt(), geneTokens + r["n_chrom_codes"].toInt());
    QCOMPARE(r["tokens_shape"].toArray(), QJsonArray({man["n_tokens"].toInt(), D}));
    QCOMPARE(r["tokens_dtype"].toString(), QString("torch.float32"));
    QCOMPARE(r["offsets"].toObject()["human"].toInt(), 0);
    QCOMPARE(r["offsets"].toObject()["mouse"].toInt(), r["human"].toObject()["n"].toInt());
    QCOMPARE(r["chrom_columns"].toArray(), QJsonArray({"species", "gene_symbol", "chromosome", "start"}));
    for (const char* sp : {"human", "mouse"}) {
      const QJsonObject s = r[sp].toObject();
      QCOMPARE(s["type"].toString(), QString("dict"));
      QCOMPARE(s["n"].toInt(), 900);
      QVERIFY2(s["all_tensors"].toBool(), sp);
      QVERIFY2(s["rows_match"].toBool(), sp);
      QVERIFY2(s["keys_upper"].toBool(), sp);
      QVERIFY2(s["csv_order"].toBool(), sp);
    }
    QVERIFY(r["homologs"].toInt() > 600);
    QVERIFY2(r["homolog_min_cos"].toDouble() > 0.9, qPrintable(QString::number(r["homolog_min_cos"].toDouble())));
    QVERIFY(r["random_mean_abs_cos"].toDouble() < 0.1);
    QVERIFY2(r["random_q99_abs_cos"].toDouble() < 0.3, qPrintable(QString::number(r["random_q99_abs_cos"].toDouble())));
    const QJsonObject missing = r["missing"].toObject();
    QCOMPARE(missing.size(), 6);
    for (const auto& k : missing.keys())
      QVERIFY2(missing[k].toArray().isEmpty(), qPrintable(k + " has genes without embeddings"));
  }

  // Our own restricted loader reads what we write, in the same order (no type-tag globals).
  void ourLoaderReadsTheBundle() {
    const QString a = dir_.path() + "/assets/";
    const auto human = uce::model::loadTensorDict(
        (a + "protein_embeddings/Homo_sapiens.GRCh38.gene_symbol_to_embedding_ESM2.pt").toStdString());
    const auto mouse = uce::model::loadTensorDict(
        (a + "protein_embeddings/Mus_musculus.GRCm39.gene_symbol_to_embedding_ESM2.pt").toStdString());
    const at::Tensor all = uce::model::loadTensor((a + "all_tokens.torch").toStdString());
    const auto offsets = uce::model::loadStrIntPickle((a + "species_offsets.pkl").toStdString());
    QCOMPARE(human.size(), size_t{900});
    QCOMPARE(mouse.size(), size_t{900});
    QCOMPARE(offsets.size(), size_t{2});
    QCOMPARE(offsets[0].first, std::string("human"));
    QCOMPARE(offsets[1].second, int64_t{900});
    QVERIFY(torch::equal(human[17].second, all[17]));
    QVERIFY(torch::equal(mouse[5].second, all[900 + 5]));
    QVERIFY(std::find_if(mouse.begin(), mouse.end(), [](const auto& kv) { return kv.first == "DCN"; }) != mouse.end());
  }

  // The writer on its own: a dict whose order is not alphabetical keeps its order.
  void dictKeepsInsertionOrder() {
    const std::vector<std::string> keys = {"ZED", "ALPHA", "MID"};
    const std::vector<float> data = {1, 2, 3, 4, 5, 6};
    const QString path = dir_.path() + "/order.pt";
    uce::writeFileAtomic(path.toStdString(), uce::model::torchSaveEmbeddingDict(keys, data.data(), 2));
    QString out;
    QCOMPARE(uce::test::python(QString("import torch; d = torch.load(r'%1'); "
                                       "print(list(d), [v.tolist() for v in d.values()])")
                                   .arg(path),
                               &out),
             0);
    QCOMPARE(out.trimmed(), QString("['ZED', 'ALPHA', 'MID'] [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]"));
  }

  void cliRejectsBadOptions() {
    QString err;
    QCOMPARE(uce::test::cli({"synth", "--cells", "10"}, nullptr, &err), 2);
    QVERIFY(err.contains("--out"));
    QCOMPARE(uce::test::cli({"synth", "--out", dir_.path() + "/x", "--genes", "5"}, nullptr, &err), 2);
    QVERIFY(err.contains("--genes"));
    QCOMPARE(uce::test::cli({"synth", "--out", dir_.path() + "/x", "--gene-positions",
                             dir_.path() + "/nope.csv"},
                            nullptr, &err),
             1);
    QVERIFY(err.contains("nope.csv"));
  }

 private:
  QTemporaryDir dir_;
};

QTEST_GUILESS_MAIN(TestAssetBundle)
#include "test_asset_bundle.moc"
