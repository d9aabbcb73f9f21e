// The restricted unpickler against files written by Debian's PyTorch (torch.save) and pickle.
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>
#include <torch/torch.h>

#include "test_support.h"
#include "uce/core/error.h"
#include "uce/model/torch_file.h"

using namespace uce::model;

class TestTorchFile : public QObject {
  Q_OBJECT
  QTemporaryDir tmp_;

  QString path(const char* name) { return tmp_.filePath(name); }

 private Q_SLOTS:
  void initTestCase() {
    QString err;
    int rc = uce::test::python(QString(R"(
import torch, pickle, collections
torch.manual_seed(0)
m = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 3))
torch.save(m.state_dict(), '%1/state.torch')          # OrderedDict with _metadata
t = torch.arange(12, dtype=torch.float32).reshape(3, 4)
torch.save(t, '%1/tensor.torch')
base = torch.randn(5, 8)
torch.save({'A1BG': base[0], 'TP53': base[3], 'col': base[:, 2], 'half': base[1].half()}, '%1/dict.pt')
torch.save({'x': torch.tensor([1, 2, 3])}, '%1/ints.pt')
for proto in (2, 4, 5):
    pickle.dump({'human': 0, 'mouse': 19790, 'big': 2**40, 'neg': -5}, open('%1/off%2.pkl'.replace('%2', str(proto)), 'wb'), protocol=proto)
class Evil:
    def __reduce__(self):
        import os
        return (os.system, ('echo pwned',))
torch.save({'w': torch.zeros(2), 'evil': Evil()}, '%1/evil.pt')
data = open('%1/state.torch', 'rb').read()
open('%1/truncated.torch', 'wb').write(data[: len(data) // 2])
import json
json.dump({k: v.flatten().tolist() for k, v in m.state_dict().items()}, open('%1/state.json', 'w'))
)").arg(tmp_.path()), nullptr, &err);
    QVERIFY2(rc == 0, qPrintable(err));
  }

  void stateDictOrderedDict() {
    NamedTensors sd = loadTensorDict(path("state.torch").toStdString());
    QStringList keys;
    for (auto& kv : sd) keys << QString::fromStdString(kv.first);
    QCOMPARE(keys, (QStringList{"0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias"}));
    QCOMPARE(sd[0].second.sizes().vec(), (std::vector<int64_t>{4, 6}));
    QCOMPARE(sd[0].second.scalar_type(), at::kFloat);
    // values equal what PyTorch printed
    QByteArray js = uce::test::readAll(path("state.json"));
    QJsonObject o = QJsonDocument::fromJson(js).object();
    for (auto& kv : sd) {
      QJsonArray ref = o[QString::fromStdString(kv.first)].toArray();
      at::Tensor flat = kv.second.contiguous().view(-1);
      QCOMPARE(flat.numel(), int64_t(ref.size()));
      for (int64_t k = 0; k < flat.numel(); ++k)
        QCOMPARE(flat[k].item<float>(), float(ref[int(k)].toDouble()));
    }
  }

  void singleTensor() {
    at::Tensor t = loadTensor(path("tensor.torch").toStdString());
    QCOMPARE(t.sizes().vec(), (std::vector<int64_t>{3, 4}));
    QCOMPARE(t[2][3].item<float>(), 11.f);
  }

  void dictOfViewsSharingStorage() {
    NamedTensors d = loadTensorDict(path("dict.pt").toStdString());
    QCOMPARE(int(d.size()), 4);
    QCOMPARE(d[0].first, std::string("A1BG"));
    QCOMPARE(d[1].first, std::string("TP53"));
    QCOMPARE(d[2].second.sizes().vec(), (std::vector<int64_t>{5}));  // strided column view
    QCOMPARE(d[2].second[0].item<float>(), d[0].second[2].item<float>());
    QCOMPARE(d[2].second[3].item<float>(), d[1].second[2].item<float>());
    QCOMPARE(d[3].second.scalar_type(), at::kHalf);
    NamedTensors ints = loadTensorDict(path("ints.pt").toStdString());
    QCOMPARE(ints[0].second.scalar_type(), at::kLong);
    QCOMPARE(ints[0].second[2].item<int64_t>(), int64_t(3));
  }

  void plainPickleOffsets() {
    for (const char* f : {"off2.pkl", "off4.pkl", "off5.pkl"}) {
      auto off = loadStrIntPickle(path(f).toStdString());
      QCOMPARE(int(off.size()), 4);
      QCOMPARE(off[1].first, std::string("mouse"));
      QCOMPARE(off[1].second, int64_t(19790));
      QCOMPARE(off[2].second, int64_t(1) << 40);
      QCOMPARE(off[3].second, int64_t(-5));
    }
  }

  void refusesCodeAndCorruptFiles() {
    try {
      loadTensorDict(path("evil.pt").toStdString());
      QFAIL("evil pickle accepted");
    } catch (const uce::Error& e) {
      QCOMPARE(e.kind(), uce::ErrorKind::Format);
      QVERIFY(QString(e.what()).contains("refusing to load global"));
      QVERIFY(QString(e.what()).contains("evil.pt"));
    }
    try {
      loadTensorDict(path("truncated.torch").toStdString());
      QFAIL("truncated archive accepted");
    } catch (const uce::Error& e) {
      QVERIFY(QString(e.what()).contains("truncated.torch"));
    }
    try {
      loadTensor(path("off2.pkl").toStdString());
      QFAIL("plain pickle accepted as archive");
    } catch (const uce::Error& e) {
      QCOMPARE(e.kind(), uce::ErrorKind::Format);
    }
    try {
      loadTensor(path("state.torch").toStdString());
      QFAIL("dict accepted as tensor");
    } catch (const uce::Error& e) {
      QVERIFY(QString(e.what()).contains("expected one tensor"));
    }
  }
};

QTEST_GUILESS_MAIN(TestTorchFile)
#include "test_torch_file.moc"
