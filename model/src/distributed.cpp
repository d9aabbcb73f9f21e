// Data-parallel plumbing over c10d: TCPStore rendezvous, Gloo (CPU) / NCCL (CUDA) process group,
// bucketed gradient averaging and the initial parameter broadcast.
#include "uce/model/distributed.h"

#include <torch/torch.h>

#include <torch/version.h>

#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if TORCH_VERSION_MAJOR >= 2
#include <torch/csrc/distributed/c10d/Backend.hpp>
#endif
// Debian's LibTorch headers include Gloo's (package libgloo-dev); without them the build still
// works and multi-rank CPU training reports what to install.
#if __has_include(<gloo/rendezvous/store.h>)
#define UCE_HAVE_GLOO 1
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#else
#define UCE_HAVE_GLOO 0
#endif
#if defined(USE_C10D_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>

#include "uce/core/error.h"

namespace uce::model {
namespace {

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

int envInt(const char* name, int def, int lo, int hi) {
  const char* v = env(name);
  if (!v) return def;
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v, &end, 10);
  if (errno != 0 || *end != '\0' || x < lo || x > hi)
    fail(ErrorKind::InvalidArgument, "", std::string("environment variable ") + name + "='" + v +
                                             "' is not an integer in [" + std::to_string(lo) + ", " +
                                             std::to_string(hi) + "]; check the launcher's settings");
  return static_cast<int>(x);
}

[[maybe_unused]] bool isLoopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

// Runs a c10d call, turning its exceptions (timeouts, refused connections) into uce::Error.
template <class F>
auto guarded(const std::string& what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    if (const auto nl = msg.find("\nException raised from"); nl != std::string::npos) msg.resize(nl);
    fail(ErrorKind::Io, "", "data-parallel " + what + " failed: " + msg +
                                "; check that every rank was started with the same WORLD_SIZE, MASTER_ADDR and "
                                "MASTER_PORT and that no rank has exited");
  }
}

// The collective interface: since LibTorch 2.0 Gloo and NCCL are c10d::Backend objects (a
// ProcessGroup dispatches to them); in 1.13 they are ProcessGroups themselves.
#if TORCH_VERSION_MAJOR >= 2
using Collectives = c10d::Backend;
#else
using Collectives = c10d::ProcessGroup;
#endif

}  // namespace

LaunchEnv launchEnvFromEnvironment() {
  LaunchEnv e;
  if (env("RANK") || env("WORLD_SIZE")) {
    e.fromLauncher = true;
    e.worldSize = envInt("WORLD_SIZE", 1, 1, 1 << 20);
    e.rank = envInt("RANK", 0, 0, e.worldSize - 1);
    e.localRank = envInt("LOCAL_RANK", 0, 0, 1 << 20);
  } else if (env("SLURM_PROCID") && env("SLURM_NTASKS")) {
    e.fromLauncher = true;
    e.worldSize = envInt("SLURM_NTASKS", 1, 1, 1 << 20);
    e.rank = envInt("SLURM_PROCID", 0, 0, e.worldSize - 1);
    e.localRank = envInt("SLURM_LOCALID", 0, 0, 1 << 20);
  }
  if (const char* a = env("MASTER_ADDR")) e.masterAddr = a;
  e.masterPort = envInt("MASTER_PORT", e.masterPort, 1, 65535);
  if (e.fromLauncher && e.worldSize > 1 && !env("MASTER_ADDR"))
    fail(ErrorKind::InvalidArgument, "", "WORLD_SIZE is " + std::to_string(e.worldSize) +
                                             " but MASTER_ADDR is not set: set it to the host of rank 0");
  return e;
}

bool glooAvailable() { return UCE_HAVE_GLOO != 0; }

int freeLocalPort() {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) fail(ErrorKind::Io, "", std::string("cannot open a socket: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    const std::string why = std::strerror(errno);
    ::close(s);
    fail(ErrorKind::Io, "", "cannot find a free port on 127.0.0.1: " + why);
  }
  ::close(s);
  return ntohs(a.sin_port);
}

struct Distributed::Impl {
  int rank = 0, world = 1;
  std::string backend;
  torch::Device cuda{torch::kCUDA, 0};  // NCCL: this rank's GPU (LOCAL_RANK % GPUs)
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<Collectives> pg;
  std::chrono::milliseconds timeout{0};

  void allreduceSum(at::Tensor& t) {
    std::vector<at::Tensor> v{t};
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    guarded("all-reduce", [&] { pg->allreduce(v, o)->wait(timeout); });
  }

  // Overlapped averaging (attachOverlapped). Shared with the parameters' hooks, which may
  // outlive this object: a hook that fires when nothing is armed does nothing.
  struct Overlap;
  std::shared_ptr<Overlap> overlap;
};

struct Distributed::Impl::Overlap {
  struct Bucket {
    std::vector<size_t> params;   // indices into `tracked`
    std::vector<int64_t> offset;  // element offset of each in `flat`
    int64_t numel = 0;
    at::Tensor flat;
    size_t pending = 0;           // parameters whose gradient has not arrived in this pass
    c10::intrusive_ptr<c10d::Work> work;  // set once started
  };
  c10::intrusive_ptr<Collectives> pg;
  std::vector<at::Tensor> tracked;
  std::vector<std::pair<size_t, size_t>> where;  // per tracked parameter: (bucket, slot)
  std::vector<uint8_t> arrived;                  // per tracked parameter, this pass
  std::vector<Bucket> buckets;                   // in launch order
  size_t nextBucket = 0;                         // buckets [0, nextBucket) have started
  bool armed = false;
  std::exception_ptr hookError;

  void startReadyBuckets() {
    while (nextBucket < buckets.size() && buckets[nextBucket].pending == 0) {
      Bucket& b = buckets[nextBucket++];
      std::vector<at::Tensor> v{b.flat};
      c10d::AllreduceOptions o;
      o.reduceOp = c10d::ReduceOp::SUM;
      b.work = guarded("all-reduce", [&] { return pg->allreduce(v, o); });
    }
  }
  // Copies parameter k's gradient (grad: the one autograd is about to accumulate, or undefined)
  // plus what .grad() holds already into its bucket slot.
  void stage(size_t k, const at::Tensor& grad) {
    const auto [bi, slot] = where[k];
    Bucket& b = buckets[bi];
    const at::Tensor& p = tracked[k];
    at::Tensor dst = b.flat.narrow(0, b.offset[slot], p.numel());
    const at::Tensor& held = p.grad();
    if (grad.defined() && held.defined()) dst.copy_(held.reshape({-1})).add_(grad.reshape({-1}));
    else if (grad.defined()) dst.copy_(grad.reshape({-1}));
    else if (held.defined()) dst.copy_(held.reshape({-1}));
    else dst.zero_();
    arrived[k] = 1;
    --b.pending;
  }
};

Distributed::Distributed(const LaunchEnv& env, const std::string& device, std::chrono::milliseconds timeout)
    : d_(std::make_unique<Impl>()) {
  Impl& d = *d_;
  d.rank = env.rank;
  d.world = env.worldSize;
  d.timeout = timeout;
  if (env.worldSize < 1 || env.rank < 0 || env.rank >= env.worldSize)
    fail(ErrorKind::InvalidArgument, "", "RANK must lie in [0, WORLD_SIZE)");
  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(env.masterPort);
  so.isServer = env.rank == 0;
  so.numWorkers = static_cast<std::size_t>(env.worldSize);
  so.waitWorkers = true;
  so.timeout = timeout;
  d.store = guarded("rendezvous at " + env.masterAddr + ":" + std::to_string(env.masterPort), [&] {
    return c10::intrusive_ptr<c10d::Store>(c10::make_intrusive<c10d::TCPStore>(env.masterAddr, so));
  });
  if (device == "cuda") {
#if defined(USE_C10D_NCCL)
    const int gpus = static_cast<int>(torch::cuda::device_count());
    d.cuda = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.localRank % std::max(1, gpus)));
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = timeout;
    d.pg = guarded("NCCL process group", [&] {
      return c10::intrusive_ptr<Collectives>(
          c10::make_intrusive<c10d::ProcessGroupNCCL>(d.store, env.rank, env.worldSize, opts));
    });
    d.backend = "nccl";
#else
    fail(ErrorKind::InvalidArgument, "", "multi-rank training on CUDA needs NCCL, and this build's LibTorch has no "
                                         "c10d NCCL support; train on the CPU or with one rank");
#endif
  } else {
#if UCE_HAVE_GLOO
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (isLoopback(env.masterAddr))
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    opts->threads = 2;
    d.pg = guarded("Gloo process group", [&] {
      return c10::intrusive_ptr<Collectives>(
          c10::make_intrusive<c10d::ProcessGroupGloo>(d.store, env.rank, env.worldSize, opts));
    });
    d.backend = "gloo";
#else
    fail(ErrorKind::InvalidArgument, "", "multi-rank CPU training needs Gloo, and this build was made without its "
                                         "headers: install libgloo-dev and rebuild, or train with one rank");
#endif
  }
}

Distributed::~Distributed() = default;

int Distributed::rank() const { return d_->rank; }
int Distributed::worldSize() const { return d_->world; }
std::string Distributed::backend() const { return d_->backend; }

void Distributed::broadcast(std::vector<at::Tensor>& tensors) {
  if (d_->world == 1 || tensors.empty()) return;
  torch::NoGradGuard noGrad;
  // One flat tensor per (device, dtype): few messages, and Gloo wants one tensor per call.
  std::map<std::pair<std::string, int>, std::vector<size_t>> groups;
  for (size_t i = 0; i < tensors.size(); ++i)
    groups[{tensors[i].device().str(), static_cast<int>(tensors[i].scalar_type())}].push_back(i);
  for (auto& [key, idx] : groups) {
    std::vector<at::Tensor> parts;
    for (size_t i : idx) parts.push_back(tensors[i].detach().reshape({-1}));
    std::vector<at::Tensor> flat{torch::cat(parts)};
    c10d::BroadcastOptions o;
    o.rootRank = 0;
    guarded("broadcast", [&] { d_->pg->broadcast(flat, o)->wait(d_->timeout); });
    int64_t off = 0;
    for (size_t i : idx) {
      const int64_t n = tensors[i].numel();
      tensors[i].detach().copy_(flat[0].narrow(0, off, n).view(tensors[i].sizes()));
      off += n;
    }
  }
}

void Distributed::averageGradients(std::vector<at::Tensor>& params, int64_t bucketBytes) {
  if (d_->world == 1) return;
  torch::NoGradGuard noGrad;
  for (auto& p : params)
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
  const double scale = 1.0 / static_cast<double>(d_->world);
  size_t i = 0;
  while (i < params.size()) {
    // A bucket: consecutive parameters of one device and dtype, up to bucketBytes.
    const auto dev = params[i].grad().device();
    const auto dt = params[i].grad().scalar_type();
    std::vector<size_t> idx;
    int64_t bytes = 0;
    while (i < params.size() && params[i].grad().device() == dev && params[i].grad().scalar_type() == dt &&
           (idx.empty() || bytes + params[i].grad().nbytes() <= static_cast<size_t>(bucketBytes))) {
      bytes += static_cast<int64_t>(params[i].grad().nbytes());
      idx.push_back(i++);
    }
    std::vector<at::Tensor> parts;
    for (size_t k : idx) parts.push_back(params[k].grad().reshape({-1}));
    at::Tensor flat = torch::cat(parts);
    d_->allreduceSum(flat);
    flat.mul_(scale);
    int64_t off = 0;
    for (size_t k : idx) {
      at::Tensor g = params[k].grad();
      const int64_t n = g.numel();
      g.copy_(flat.narrow(0, off, n).view(g.sizes()));
      off += n;
    }
  }
}

void Distributed::attachOverlapped(const std::vector<at::Tensor>& params, int64_t bucketBytes) {
  Impl& d = *d_;
  if (d.world == 1) return;
  // A new attachment (e.g. a second Trainer on this group) replaces the old one; the old
  // parameters' hooks keep their own state, never armed again, and do nothing.
  if (d.overlap) d.overlap->armed = false;
  auto o = std::make_shared<Impl::Overlap>();
  o->pg = d.pg;
  o->tracked = params;
  o->where.assign(params.size(), {0, 0});
  o->arrived.assign(params.size(), 0);
  // Reverse registration order: the last layers' gradients are computed first.
  for (size_t r = params.size(); r-- > 0;) {
    const at::Tensor& p = params[r];
    Impl::Overlap::Bucket* b = o->buckets.empty() ? nullptr : &o->buckets.back();
    const at::Tensor& first = b ? params[b->params.front()] : p;
    const bool fits = b && first.device() == p.device() && first.scalar_type() == p.scalar_type() &&
                      (b->numel + p.numel()) * static_cast<int64_t>(p.element_size()) <= bucketBytes;
    if (!fits) {
      o->buckets.emplace_back();
      b = &o->buckets.back();
    }
    o->where[r] = {o->buckets.size() - 1, b->params.size()};
    b->offset.push_back(b->numel);
    b->params.push_back(r);
    b->numel += p.numel();
  }
  for (auto& b : o->buckets)
    b.flat = torch::zeros({b.numel}, params[b.params.front()].options().requires_grad(false));
  for (size_t k = 0; k < params.size(); ++k) {
    at::Tensor p = params[k];
    p.register_hook([o, k](const at::Tensor& grad) {
      if (!o->armed || o->arrived[k] || o->hookError) return;
      try {
        torch::NoGradGuard noGrad;
        o->stage(k, grad);
        o->startReadyBuckets();
      } catch (...) {
        o->hookError = std::current_exception();  // rethrown by finishOverlapped, not into autograd
      }
    });
  }
  d.overlap = std::move(o);
}

void Distributed::armOverlapped() {
  Impl& d = *d_;
  if (d.world == 1 || !d.overlap) return;
  Impl::Overlap& o = *d.overlap;
  if (o.armed) fail(ErrorKind::InvalidArgument, "", "overlapped gradient averaging armed twice without finishing");
  for (auto& b : o.buckets) {
    b.pending = b.params.size();
    b.work.reset();
  }
  std::fill(o.arrived.begin(), o.arrived.end(), 0);
  o.nextBucket = 0;
  o.hookError = nullptr;
  o.armed = true;
}

int Distributed::finishOverlapped(std::vector<at::Tensor>& params) {
  Impl& d = *d_;
  if (d.world == 1) return 0;
  if (!d.overlap || !d.overlap->armed)
    fail(ErrorKind::InvalidArgument, "", "overlapped gradient averaging finished without being armed");
  Impl::Overlap& o = *d.overlap;
  o.armed = false;
  if (o.hookError) std::rethrow_exception(o.hookError);
  if (params.size() != o.tracked.size())
    fail(ErrorKind::InvalidArgument, "", "the parameter list changed after attachOverlapped");
  torch::NoGradGuard noGrad;
  const int startedInBackward = static_cast<int>(o.nextBucket);
  for (size_t k = 0; k < o.tracked.size(); ++k)
    if (!o.arrived[k]) o.stage(k, at::Tensor());  // not reached by autograd in this pass
  o.startReadyBuckets();
  const double scale = 1.0 / static_cast<double>(d.world);
  for (auto& b : o.buckets) {
    guarded("all-reduce", [&] { b.work->wait(d.timeout); });
    b.work.reset();
    b.flat.mul_(scale);
    for (size_t s = 0; s < b.params.size(); ++s) {
      at::Tensor& p = params[b.params[s]];
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      at::Tensor g = p.grad();
      g.copy_(b.flat.narrow(0, b.offset[s], g.numel()).view(g.sizes()));
    }
  }
  return startedInBackward;
}

int Distributed::overlappedBuckets() const {
  return d_->overlap ? static_cast<int>(d_->overlap->buckets.size()) : 0;
}

std::vector<double> Distributed::sum(const std::vector<double>& values) {
  if (d_->world == 1 || values.empty()) return values;
  at::Tensor t = torch::tensor(values, torch::kDouble);
  if (d_->backend == "nccl") t = t.to(d_->cuda);
  d_->allreduceSum(t);
  t = t.cpu().contiguous();
  return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

void Distributed::maxBytes(std::vector<uint8_t>& values) {
  if (d_->world == 1 || values.empty()) return;
  constexpr size_t kSlice = size_t{64} << 20;  // bounded staging memory for large corpora
  for (size_t off = 0; off < values.size(); off += kSlice) {
    const auto n = static_cast<int64_t>(std::min(kSlice, values.size() - off));
    at::Tensor t = torch::from_blob(values.data() + off, {n}, torch::kUInt8).clone();
    if (d_->backend == "nccl") t = t.to(d_->cuda);
    std::vector<at::Tensor> v{t};
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::MAX;
    guarded("all-reduce", [&] { d_->pg->allreduce(v, o)->wait(d_->timeout); });
    t = t.cpu().contiguous();
    std::memcpy(values.data() + off, t.data_ptr<uint8_t>(), static_cast<size_t>(n));
  }
}

void Distributed::barrier() {
  if (d_->world == 1) return;
  guarded("barrier", [&] { d_->pg->barrier()->wait(d_->timeout); });
}

}  // namespace uce::model
