#pragma once
// Data-parallel training over PyTorch's c10d: rendezvous through a TCPStore from the usual
// launcher variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT; SLURM_PROCID,
// SLURM_NTASKS, SLURM_LOCALID as a fallback), a Gloo process group on the CPU and NCCL on CUDA
// (when this LibTorch was built with it), gradient averaging in flattened buckets and the
// broadcast of the initial parameters from rank 0.
//
// Kept free of c10d headers so that trainer.h and the CLI compile fast.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/Tensor.h>

namespace uce::model {

struct LaunchEnv {
  int rank = 0;
  int worldSize = 1;
  int localRank = 0;
  std::string masterAddr = "127.0.0.1";
  int masterPort = 29500;
  bool fromLauncher = false;  // true when RANK/WORLD_SIZE (or SLURM's) were found
};

// Reads the launcher variables; throws uce::Error(InvalidArgument) naming the variable at fault.
LaunchEnv launchEnvFromEnvironment();

// Whether this build can run CPU ranks (Gloo headers were found at build time).
bool glooAvailable();

// A free TCP port on 127.0.0.1 (for `uce train --nproc P` to hand to its local ranks).
int freeLocalPort();

class Distributed {
 public:
  // Joins the group (blocks until all WORLD_SIZE ranks have arrived or timeout passes).
  // device: "cpu" (Gloo) or "cuda" (NCCL when available, else Gloo on CUDA tensors is refused).
  Distributed(const LaunchEnv& env, const std::string& device,
              std::chrono::milliseconds timeout = std::chrono::minutes(5));
  ~Distributed();
  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

  int rank() const;
  int worldSize() const;
  std::string backend() const;  // "gloo" or "nccl"

  // Copies rank 0's values into every rank's tensors (in place).
  void broadcast(std::vector<at::Tensor>& tensors);
  // Replaces every parameter's .grad() with the mean over the ranks. Gradients are flattened
  // into buckets of at most bucketBytes (by dtype and device), all-reduced, and copied back.
  // A parameter without a gradient contributes zeros (every rank must see the same layout).
  void averageGradients(std::vector<at::Tensor>& params, int64_t bucketBytes = 25 << 20);
  // Gradient averaging overlapped with the backward pass, as PyTorch's DDP does it.
  // attachOverlapped registers a hook on every parameter and lays the parameters out in buckets
  // of at most bucketBytes (same device and dtype), in reverse order, the order autograd
  // produces their gradients. After armOverlapped(), the next backward pass copies each
  // parameter's gradient (plus what .grad() already holds from earlier micro-batches) into its
  // bucket as soon as autograd computes it, and starts an asynchronous all-reduce of a bucket
  // as soon as all its parameters are in, while autograd goes on with the earlier layers.
  // Buckets start strictly in order, so every rank issues the same collectives in the same
  // order. finishOverlapped() then starts any bucket still waiting (parameters autograd did not
  // reach contribute what .grad() holds, or zeros), waits for all, and writes the mean over the
  // ranks into each .grad(): the same values as averageGradients. Returns how many buckets had
  // started before the backward pass ended (the overlap achieved). The parameter list must be
  // the same (same tensors, same order) at attach and finish; attaching again replaces the
  // earlier attachment.
  void attachOverlapped(const std::vector<at::Tensor>& params, int64_t bucketBytes = 25 << 20);
  void armOverlapped();
  int finishOverlapped(std::vector<at::Tensor>& params);
  int overlappedBuckets() const;  // buckets laid out by attachOverlapped (0 before)
  // Sums a few doubles over the ranks (metrics, stop votes).
  std::vector<double> sum(const std::vector<double>& values);
  // Element-wise maximum over the ranks, in place (flags each rank sets for its own share of
  // the corpus: the union).
  void maxBytes(std::vector<uint8_t>& values);
  void barrier();

 private:
  struct Impl;
  std::unique_ptr<Impl> d_;
};

}  // namespace uce::model
