#pragma once
// A LibTorch CPU allocator that keeps freed large buffers for reuse.
//
// Why: a forward pass allocates buffers of tens to hundreds of MB for every layer (attention
// scores, q/k/v, the feed-forward hidden layer). glibc serves those from fresh mmaps unless its
// heap happens to have room, and on any thread but the main one it never has: each thread's
// arena is built of 64 MiB heaps. Every such buffer is then faulted in page by page and
// unmapped when freed. In the desktop app, where embedding runs on a job thread, the demo took
// 1.4 s a batch instead of 0.11 s. With this allocator the same buffers are reused batch after
// batch: 8.5x on a worker thread, 6.5x on the main thread (bench/bench_model_host_cache,
// bench/RESULTS.md).
//
// Buffers of kMinCachedBytes and more go through the cache; smaller ones go to LibTorch's
// default allocator. A request takes the smallest free cached buffer that holds it and is at
// most 25 % (plus 2 MiB) larger, since batches differ a little in sentence length; otherwise a
// new buffer is mapped: 2 MiB-aligned whole pages marked for transparent huge pages (its first
// touch faults 2 MiB at a time). Freed buffers are kept while the cache holds at most hostCacheLimit()
// bytes (default: a quarter of physical memory); every cached buffer is released when the
// last scope ends.
#include <cstddef>
#include <cstdint>

namespace uce::model {

struct HostCacheStats {
  uint64_t hits = 0;         // requests served from the cache
  uint64_t misses = 0;       // large requests that needed a new buffer
  uint64_t cachedBytes = 0;  // free buffers held now
  uint64_t liveBytes = 0;    // buffers of this allocator in use now
  uint64_t peakCachedBytes = 0;
  bool installed = false;    // the allocator is LibTorch's CPU allocator now
};

// While a scope lives, LibTorch's CPU allocator is the caching one. Scopes nest and may live on
// several threads at once; when the last ends, the previous allocator is restored and every
// cached buffer is freed (tensors still alive keep their buffers and free them later).
class HostCacheScope {
 public:
  HostCacheScope();
  ~HostCacheScope();
  HostCacheScope(const HostCacheScope&) = delete;
  HostCacheScope& operator=(const HostCacheScope&) = delete;
};

constexpr size_t kMinCachedBytes = size_t(1) << 20;  // 1 MiB

HostCacheStats hostCacheStats();
// Most bytes the cache keeps in free buffers; 0 restores the default (a quarter of RAM).
void setHostCacheLimit(uint64_t bytes);
uint64_t hostCacheLimit();

}  // namespace uce::model
