#include "uce/model/host_memory.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <c10/util/Exception.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace uce::model {
namespace {

constexpr uint8_t kPriority = 1;          // above LibTorch's default CPU allocator (0)
constexpr size_t kHuge = size_t(1) << 21;     // new buffers: 2 MiB-aligned, whole 2 MiB pages

// A fresh buffer of n bytes rounded up to whole 2 MiB pages, 2 MiB-aligned and marked for
// transparent huge pages: its first touch faults in 2 MiB at a time, not 4 KiB (a pass touches
// hundreds of MB of new buffers in its first batches, and per-page faults cost more than the
// maths there). Returns the buffer and its size.
std::pair<void*, size_t> mapBuffer(size_t n) {
  const size_t size = (n + kHuge - 1) / kHuge * kHuge;
  void* p = mmap(nullptr, size + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  TORCH_CHECK(p != MAP_FAILED, "UCE host cache: cannot allocate ", size, " bytes of memory");
  const auto base = reinterpret_cast<uintptr_t>(p);
  const uintptr_t start = (base + kHuge - 1) / kHuge * kHuge;
  if (start > base) munmap(p, start - base);
  if (base + kHuge > start) munmap(reinterpret_cast<void*>(start + size), base + kHuge - start);
  void* out = reinterpret_cast<void*>(start);
#ifdef MADV_HUGEPAGE
  madvise(out, size, MADV_HUGEPAGE);  // advice only: works without THP
#endif
  return {out, size};
}

uint64_t defaultLimit() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return uint64_t(1) << 32;
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) / 4;
}

class Cache {
 public:
  static Cache& get() {
    static Cache* c = new Cache;  // never destroyed: tensors may be freed during exit
    return *c;
  }

  c10::DataPtr allocate(size_t n) {
    if (n < kMinCachedBytes) return previous()->allocate(n);
    void* ptr = take(n);
    if (!ptr) {
      std::pair<void*, size_t> b;
      try {
        b = mapBuffer(n);
      } catch (const c10::Error&) {
        releaseFree();  // out of memory: give the cached buffers back and try once more
        b = mapBuffer(n);
      }
      ptr = b.first;
      const size_t size = b.second;
      std::lock_guard<std::mutex> lock(m_);
      ++stats_.misses;
      live_[ptr] = size;
      stats_.liveBytes += size;
    }
    return {ptr, ptr, &Cache::deleter, c10::Device(c10::DeviceType::CPU)};
  }

  static void deleter(void* ptr) { get().giveBack(ptr); }

  void enter();
  void leave();

  HostCacheStats stats() {
    std::lock_guard<std::mutex> lock(m_);
    HostCacheStats s = stats_;
    s.installed = scopes_ > 0 && c10::GetCPUAllocator() == allocator_;
    return s;
  }
  void setLimit(uint64_t bytes) {
    std::lock_guard<std::mutex> lock(m_);
    limit_ = bytes ? bytes : defaultLimit();
  }
  uint64_t limit() {
    std::lock_guard<std::mutex> lock(m_);
    return limit_;
  }

 private:
  // Every small tensor comes through here: no lock, only an atomic read.
  c10::Allocator* previous() {
    c10::Allocator* p = previous_.load(std::memory_order_acquire);
    return p ? p : c10::GetDefaultCPUAllocator();
  }

  // The smallest free buffer that holds n bytes and is at most 25 % (plus the 2 MiB rounding of a
  // new buffer) larger, or null.
  void* take(size_t n) {
    std::lock_guard<std::mutex> lock(m_);
    auto it = free_.lower_bound(n);
    if (it == free_.end() || it->first > n + n / 4 + kHuge) return nullptr;
    void* ptr = it->second;
    const size_t size = it->first;
    free_.erase(it);
    stats_.cachedBytes -= size;
    ++stats_.hits;
    live_[ptr] = size;
    stats_.liveBytes += size;
    return ptr;
  }

  void giveBack(void* ptr) {
    size_t unmapSize = 0;
    {
      std::lock_guard<std::mutex> lock(m_);
      auto it = live_.find(ptr);
      if (it != live_.end()) {
        const size_t size = it->second;
        live_.erase(it);
        stats_.liveBytes -= size;
        if (scopes_ > 0 && stats_.cachedBytes + size <= limit_) {
          free_.emplace(size, ptr);
          stats_.cachedBytes += size;
          stats_.peakCachedBytes = std::max(stats_.peakCachedBytes, stats_.cachedBytes);
          return;
        }
        unmapSize = size;
      }
    }
    if (unmapSize) munmap(ptr, unmapSize);  // over the limit, or no scope left
    else c10::free_cpu(ptr);                     // a raw_deallocate of a small block
  }

  void releaseFree() {
    std::multimap<size_t, void*> out;
    {
      std::lock_guard<std::mutex> lock(m_);
      out.swap(free_);
      stats_.cachedBytes = 0;
    }
    for (auto& [size, p] : out) munmap(p, size);
  }

  friend struct CachingAllocator;
  std::mutex m_;
  std::multimap<size_t, void*> free_;       // size -> buffer
  std::unordered_map<void*, size_t> live_;  // buffer -> size, while a tensor holds it
  HostCacheStats stats_;
  uint64_t limit_ = defaultLimit();
  int scopes_ = 0;
  std::atomic<c10::Allocator*> previous_{nullptr};
  c10::Allocator* allocator_ = nullptr;
};

// LibTorch 1.x declares Allocator::allocate const and has no copy_data; LibTorch 2.3 and later
// declare allocate non-const and copy_data pure virtual. Both spellings are defined (without
// `override`), so whichever the base declares is overridden.
struct CachingAllocator final : c10::Allocator {
  c10::DataPtr allocate(size_t n) const { return Cache::get().allocate(n); }
  c10::DataPtr allocate(size_t n) { return Cache::get().allocate(n); }
  c10::DeleterFnPtr raw_deleter() const override { return &Cache::deleter; }
  void copy_data(void* dest, const void* src, std::size_t count) const {
    if (count) std::memcpy(dest, src, count);
  }
};

CachingAllocator& cachingAllocator() {
  static CachingAllocator* a = new CachingAllocator;
  return *a;
}

void Cache::enter() {
  std::lock_guard<std::mutex> lock(m_);
  if (scopes_++ > 0) return;
  allocator_ = &cachingAllocator();
  c10::Allocator* current = c10::GetCPUAllocator();
  previous_.store(current == allocator_ ? c10::GetDefaultCPUAllocator() : current, std::memory_order_release);
  c10::SetCPUAllocator(allocator_, kPriority);
}

void Cache::leave() {
  {
    std::lock_guard<std::mutex> lock(m_);
    if (--scopes_ > 0) return;
    if (c10::GetCPUAllocator() == allocator_) c10::SetCPUAllocator(previous_.load(), kPriority);
  }
  releaseFree();
}

}  // namespace

HostCacheScope::HostCacheScope() { Cache::get().enter(); }
HostCacheScope::~HostCacheScope() { Cache::get().leave(); }

HostCacheStats hostCacheStats() { return Cache::get().stats(); }
void setHostCacheLimit(uint64_t bytes) { Cache::get().setLimit(bytes); }
uint64_t hostCacheLimit() { return Cache::get().limit(); }

}  // namespace uce::model
