"""Where the time of one UCE encoder layer goes on the GPU (bf16, inference, no padding), and
what the alternatives would give. Mirrors what model/src/network.cpp runs per layer: packed
q/k/v projection, scaled-dot-product attention, out projection, residual + LayerNorm, fused
bias+ReLU linear1 (`_addmm_activation`), linear2, residual + LayerNorm. Prints, per variant,
microseconds per cell per layer and the implied 33-layer cells/s, and a kernel table (torch
profiler) of the eager variant. Run by bench/gpu_all.sh (PROFILE=1).

usage: [NO_COMPILE=1] gpu_layer_profile.py [BATCH=64] [LEN=1075]
"""
import os
import sys
import time

import torch
import torch.nn.functional as F

B = int(sys.argv[1]) if len(sys.argv) > 1 else 64
L = int(sys.argv[2]) if len(sys.argv) > 2 else 1075
D, H, HID = 1280, 20, 5120
dev, dt = "cuda", torch.bfloat16
torch.manual_seed(0)


def p(*shape, scale=0.02):
    return (torch.randn(*shape, device=dev) * scale).to(dt)


W = dict(qkv=p(3 * D, D), qkv_b=p(3 * D), out=p(D, D), out_b=p(D), l1=p(HID, D), l1_b=p(HID), l2=p(D, HID),
         l2_b=p(D), n1w=torch.ones(D, device=dev, dtype=dt), n1b=torch.zeros(D, device=dev, dtype=dt),
         n2w=torch.ones(D, device=dev, dtype=dt), n2b=torch.zeros(D, device=dev, dtype=dt))
x0 = torch.randn(B, L, D, device=dev).to(dt)


def layer(x, attn=F.scaled_dot_product_attention):
    qkv = F.linear(x, W["qkv"], W["qkv_b"]).view(B, L, 3, H, D // H).permute(2, 0, 3, 1, 4)
    a = attn(qkv[0], qkv[1], qkv[2]).permute(0, 2, 1, 3).reshape(B, L, D)
    x = F.layer_norm(x + F.linear(a, W["out"], W["out_b"]), (D,), W["n1w"], W["n1b"], 1e-5)
    h = torch._addmm_activation(W["l1_b"], x.reshape(-1, D), W["l1"].t()).view(B, L, HID)
    return F.layer_norm(x + F.linear(h, W["l2"], W["l2_b"]), (D,), W["n2w"], W["n2b"], 1e-5)


def timeit(fn, reps=10):
    with torch.no_grad():
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / reps


flop = 2 * L * (4 * D * D + 2 * D * HID) + 4 * L * L * D  # per cell per layer
print(f"layer: batch {B}, length {L}, d {D}, heads {H}, d_hid {HID}; {flop / 1e9:.1f} GFLOP a cell")


def report(name, secs):
    us = secs / B * 1e6
    print(f"{name:34s} {us:7.1f} us/cell/layer  {flop * B / secs / 1e12:6.1f} TFLOP/s  "
          f"33 layers ~{1e6 / (us * 32.1):6.1f} cells/s")


report("eager (as network.cpp)", timeit(lambda: layer(x0)))
try:
    from torch.nn.attention import SDPBackend, sdpa_kernel
    for name, be in [("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION),
                     ("efficient", SDPBackend.EFFICIENT_ATTENTION)]:
        try:
            with sdpa_kernel([be]):
                report(f"eager, attention={name}", timeit(lambda: layer(x0)))
        except Exception as e:  # noqa: BLE001
            print(f"eager, attention={name}: unavailable ({str(e).splitlines()[0][:80]})")
except ImportError:
    pass
# Parts alone: the GEMMs and the attention.
xf = x0.reshape(-1, D)
report("GEMMs only (qkv, out, l1, l2)", timeit(lambda: (F.linear(xf, W["qkv"]), F.linear(xf, W["out"]),
                                                         F.linear(F.linear(xf, W["l1"]), W["l2"]))))
q = torch.randn(B, H, L, D // H, device=dev, dtype=dt)
report("attention only (SDPA default)", timeit(lambda: F.scaled_dot_product_attention(q, q, q)))
try:
    if os.environ.get("NO_COMPILE"):
        raise RuntimeError("skipped (NO_COMPILE set)")
    comp = torch.compile(layer)
    t = time.perf_counter()
    with torch.no_grad():
        comp(x0)
    torch.cuda.synchronize()
    print(f"(torch.compile warm-up {time.perf_counter() - t:.0f} s)")
    report("torch.compile (fused elementwise)", timeit(lambda: comp(x0)))
except Exception as e:  # noqa: BLE001
    print(f"torch.compile: unavailable ({str(e).splitlines()[0][:100]})")
from torch.profiler import ProfilerActivity, profile  # noqa: E402
with torch.no_grad(), profile(activities=[ProfilerActivity.CUDA]) as prof:
    for _ in range(5):
        layer(x0)
    torch.cuda.synchronize()
print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=14, max_name_column_width=70))
