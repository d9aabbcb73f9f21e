// The caching CPU allocator behind every embedding (model/include/uce/model/host_memory.h):
// large buffers are reused, small ones are not its business, the cache stays under its limit,
// results are the same as with LibTorch's own allocator, and nothing is left behind when the
// last scope ends (tensors that outlive it stay valid).
#include <QtTest>
#include <c10/core/CPUAllocator.h>
#include <torch/torch.h>

#include <thread>

#include "uce/model/host_memory.h"

using namespace uce::model;

class TestHostMemory : public QObject {
  Q_OBJECT

  static torch::Tensor bytes(int64_t n) { return torch::empty({n}, torch::kUInt8); }

 private Q_SLOTS:
  void largeBuffersAreReusedSmallOnesAreNot() {
    c10::Allocator* before = c10::GetCPUAllocator();
    {
      HostCacheScope scope;
      QVERIFY(hostCacheStats().installed);
      QVERIFY(c10::GetCPUAllocator() != before);
      const HostCacheStats s0 = hostCacheStats();
      void* first = nullptr;
      {
        auto t = bytes(8 << 20);
        first = t.data_ptr();
        t.fill_(7);
      }
      const HostCacheStats s1 = hostCacheStats();
      QCOMPARE(s1.misses, s0.misses + 1);
      QVERIFY(s1.cachedBytes >= (8u << 20));
      // A slightly smaller request (the next batch's sentences are a little shorter) takes it.
      auto again = bytes((8 << 20) - 300000);
      QCOMPARE(again.data_ptr(), first);
      QCOMPARE(hostCacheStats().hits, s1.hits + 1);
      // Far smaller: a new buffer, not the free 8 MB one.
      again = torch::Tensor();
      auto half = bytes(4 << 20);
      QVERIFY(half.data_ptr() != first);
      QCOMPARE(hostCacheStats().misses, s1.misses + 1);
      // Below 1 MiB: LibTorch's own allocator; the cache's counters do not move.
      const HostCacheStats s2 = hostCacheStats();
      { auto small = bytes(100000); small.fill_(1); }
      QCOMPARE(hostCacheStats().hits + hostCacheStats().misses, s2.hits + s2.misses);
    }
    QCOMPARE(c10::GetCPUAllocator(), before);
    QVERIFY(!hostCacheStats().installed);
    QCOMPARE(hostCacheStats().cachedBytes, uint64_t(0));
    QCOMPARE(hostCacheStats().liveBytes, uint64_t(0));
  }

  void theCacheStaysUnderItsLimit() {
    const uint64_t limit = hostCacheLimit();
    setHostCacheLimit(10 << 20);
    {
      HostCacheScope scope;
      { auto a = bytes(6 << 20), b = bytes(6 << 20), c = bytes(6 << 20); }
      const HostCacheStats s = hostCacheStats();
      QVERIFY2(s.cachedBytes <= (10u << 20), qPrintable(QString::number(s.cachedBytes)));
      QVERIFY(s.cachedBytes > 0);
    }
    setHostCacheLimit(limit);
    QCOMPARE(hostCacheLimit(), limit);
  }

  void resultsMatchLibTorchsAllocator() {
    torch::manual_seed(3);
    auto a = torch::randn({700, 600}), b = torch::randn({600, 900});
    const auto expected = torch::softmax(torch::matmul(a, b), -1);
    HostCacheScope scope;
    for (int round = 0; round < 3; ++round) {  // the second and third reuse the first's buffers
      const auto got = torch::softmax(torch::matmul(a, b), -1);
      QVERIFY(torch::equal(got, expected));
    }
    QVERIFY(hostCacheStats().hits > 0);
  }

  void tensorsOutliveTheScopeAndScopesNest() {
    torch::Tensor kept;
    {
      HostCacheScope outer;
      {
        HostCacheScope inner;
        kept = torch::full({3 << 20}, 2.5f);
      }
      QVERIFY(hostCacheStats().installed);  // the outer scope still holds it
    }
    QVERIFY(!hostCacheStats().installed);
    QVERIFY(hostCacheStats().liveBytes >= (12u << 20));
    QCOMPARE(kept.sum().item<double>(), 2.5 * (3 << 20));
    kept = torch::Tensor();  // freed now, straight back to the system
    QCOMPARE(hostCacheStats().liveBytes, uint64_t(0));
    QCOMPARE(hostCacheStats().cachedBytes, uint64_t(0));
  }

  void scopesOnSeveralThreads() {
    std::vector<std::thread> pool;
    std::atomic<int> wrong{0};
    for (int t = 0; t < 4; ++t)
      pool.emplace_back([&wrong, t] {
        HostCacheScope scope;
        for (int i = 0; i < 20; ++i) {
          auto x = torch::full({(1 << 18) + 1000 * (t + i)}, float(t + i));
          if (x.sum().item<double>() != double(t + i) * double(x.numel())) ++wrong;
        }
      });
    for (auto& th : pool) th.join();
    QCOMPARE(wrong.load(), 0);
    QVERIFY(!hostCacheStats().installed);
    QCOMPARE(hostCacheStats().liveBytes, uint64_t(0));
  }
};

QTEST_GUILESS_MAIN(TestHostMemory)
#include "test_host_memory.moc"
