"""Would FP8 GEMMs make the UCE encoder layer fast enough, and accurate enough? (issue 3)

Measures, on one GPU, the 1,280-d / 20-head / 5,120-hidden layer that model/src/network.cpp
runs in inference (bias-folded, bf16), against variants whose GEMMs take e4m3 inputs through
`torch._scaled_mm` (bf16 output, fp32 accumulation):
  qkv      : the q/k/v projection in FP8
  qkv+l1   : also linear1 (its ReLU then runs as a separate in-place kernel)
  qkv+l1+l2: also linear2 (its input quantized after the ReLU)
  all      : also the out projection (the residual add then runs separately)
Activations that enter an FP8 GEMM after a LayerNorm are cast with one static per-tensor
scale (network.cpp can keep the residual stream pre-divided by it, so the cast is one kernel);
weights get one scale per output row ("rowwise") or per tensor.

Accuracy: a 33-layer stack of random layers (the initialisation `uce init-model` uses), fp32
reference, cosine of each cell's CLS output after the last layer, for bf16 and each variant.

usage: gpu_fp8_probe.py [BATCH=64] [LEN=1075] [CELLS_FOR_ACCURACY=8] [LAYERS=33]
"""
import math
import sys
import time

import torch
import torch.nn.functional as F

B = int(sys.argv[1]) if len(sys.argv) > 1 else 64
L = int(sys.argv[2]) if len(sys.argv) > 2 else 1075
NACC = int(sys.argv[3]) if len(sys.argv) > 3 else 8
NLAYERS = int(sys.argv[4]) if len(sys.argv) > 4 else 33
D, H, HID = 1280, 20, 5120
dev = "cuda"
F8 = torch.float8_e4m3fn
F8MAX = 448.0
print("torch", torch.__version__, torch.cuda.get_device_name(), flush=True)

# ---- what _scaled_mm accepts in this build ------------------------------------------------
a = torch.randn(256, 1280, device=dev).to(F8)
w = torch.randn(3840, 1280, device=dev).to(F8)
one = torch.ones((), device=dev)
bias = torch.randn(3840, device=dev, dtype=torch.bfloat16)
CAN = {}
for name, kw in [("tensorwise", dict(scale_a=one, scale_b=one)),
                 ("tensorwise+bias", dict(scale_a=one, scale_b=one, bias=bias)),
                 ("rowwise", dict(scale_a=torch.ones(256, 1, device=dev), scale_b=torch.ones(1, 3840, device=dev))),
                 ("rowwise+bias", dict(scale_a=torch.ones(256, 1, device=dev), scale_b=torch.ones(1, 3840, device=dev),
                                       bias=bias))]:
    try:
        torch._scaled_mm(a, w.t(), out_dtype=torch.bfloat16, **kw)
        CAN[name] = True
    except Exception as e:  # noqa: BLE001
        CAN[name] = False
        print(f"_scaled_mm {name}: unavailable ({str(e).splitlines()[0][:120]})")
print("_scaled_mm supports:", {k: v for k, v in CAN.items()})
big = torch.tensor([500.0, -1000.0, 1e-4, 3.0], device=dev)
print("cast of [500, -1000, 1e-4, 3] to e4m3fn:", big.to(F8).float().tolist(), flush=True)


# ---- weights ------------------------------------------------------------------------------
def uniform(shape, bound, g):
    return (torch.rand(shape, generator=g, device=dev) * 2 - 1) * bound


def make_layer(g):
    return dict(qkv=uniform((3 * D, D), math.sqrt(6 / (D + 3 * D)), g), qkv_b=torch.zeros(3 * D, device=dev),
                out=uniform((D, D), 1 / math.sqrt(D), g), out_b=uniform((D,), 1 / math.sqrt(D), g),
                l1=uniform((HID, D), 1 / math.sqrt(D), g), l1_b=uniform((HID,), 1 / math.sqrt(D), g),
                l2=uniform((D, HID), 1 / math.sqrt(HID), g), l2_b=uniform((D,), 1 / math.sqrt(HID), g),
                n1w=torch.ones(D, device=dev), n1b=torch.zeros(D, device=dev),
                n2w=torch.ones(D, device=dev), n2b=torch.zeros(D, device=dev))


def quant_w(wt, rowwise):
    s = (wt.abs().amax(dim=1, keepdim=True) if rowwise else wt.abs().amax()).float().clamp_min(1e-12) / F8MAX
    return (wt / s).to(F8), s.reshape(1, -1) if rowwise else s.reshape(())


class Layer:
    """One encoder layer at a precision: 'fp32', 'bf16' or an FP8 variant name."""

    def __init__(self, w, mode, rowwise=True, fast=False):
        self.mode, self.fast, self.rowwise = mode, fast, rowwise
        dt = torch.float32 if mode == "fp32" else torch.bfloat16
        self.w = {k: v.to(dt) for k, v in w.items()}
        self.f8 = set()
        if mode not in ("fp32", "bf16"):
            self.f8 = {"qkv"} | ({"l1"} if "l1" in mode else set()) | ({"l2"} if "l2" in mode else set())
            if mode == "all":
                self.f8 = {"qkv", "l1", "l2", "out"}
        self.q = {k: quant_w(w[k].float(), rowwise) for k in self.f8}
        # Static activation scales: |LayerNorm output| <= |gamma| sqrt(D) + |beta|.
        self.s_in1 = ((w["n1w"].abs() * math.sqrt(D) + w["n1b"].abs()).max() / F8MAX).float()

    def mm(self, name, x, bias, xscale):
        """x [M, K] (bf16) @ W^T in FP8. xscale: the static per-tensor scale of x, or None for a
        dynamic one (amax of x). In the speed runs a static scale costs nothing (network.cpp would
        keep the stream pre-divided), so x is cast as it is."""
        if xscale is None:
            xscale = x.abs().amax().float().clamp_min(1e-12) / F8MAX
            x8 = (x / xscale).to(F8)
        elif self.accuracy:
            x8 = (x / xscale).to(F8)
        else:
            x8, xscale = x.to(F8), one
        w8, ws = self.q[name]
        M = x.shape[0]
        if self.rowwise:
            sa, sb = torch.ones(M, 1, device=dev) * xscale, ws
        else:
            sa, sb = xscale.reshape(()), ws
        use_bias = bias is not None and CAN["rowwise+bias" if self.rowwise else "tensorwise+bias"]
        y = torch._scaled_mm(x8, w8.t(), scale_a=sa, scale_b=sb, bias=bias if use_bias else None,
                             out_dtype=torch.bfloat16, use_fast_accum=self.fast)
        return y if use_bias or bias is None else y + bias

    accuracy = False

    def __call__(self, x, s_in0=None):
        w = self.w
        Bx, Lx, _ = x.shape
        xf = x.reshape(-1, D)
        if "qkv" in self.f8:
            qkv = self.mm("qkv", xf, w["qkv_b"], s_in0)
        else:
            qkv = F.linear(xf, w["qkv"], w["qkv_b"])
        qkv = qkv.view(Bx, Lx, 3, H, D // H).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2]).permute(0, 2, 1, 3).reshape(-1, D)
        if "out" in self.f8:
            z = xf + self.mm("out", a, w["out_b"] if self.accuracy else None, None)
        else:
            z = torch.addmm(xf + w["out_b"], a, w["out"].t()) if self.mode == "fp32" else \
                torch.addmm(xf, a, w["out"].t()).add_(w["out_b"]) if self.accuracy else torch.addmm(xf, a, w["out"].t())
        x1 = F.layer_norm(z, (D,), w["n1w"], w["n1b"], 1e-5)
        if "l1" in self.f8:
            h = self.mm("l1", x1, w["l1_b"], self.s_in1).relu_()
        else:
            h = torch._addmm_activation(w["l1_b"], x1, w["l1"].t()) if self.mode != "fp32" else \
                torch.relu(F.linear(x1, w["l1"], w["l1_b"]))
        if "l2" in self.f8:
            z2 = x1 + self.mm("l2", h, w["l2_b"] if self.accuracy else None, None)
        else:
            z2 = torch.addmm(x1, h, w["l2"].t())
            if self.accuracy:
                z2 = z2.add_(w["l2_b"])
        return F.layer_norm(z2, (D,), w["n2w"], w["n2b"], 1e-5).view(Bx, Lx, D)


# ---- speed: one layer ---------------------------------------------------------------------
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


g = torch.Generator(device=dev)
g.manual_seed(0)
w0 = make_layer(g)
x0 = (torch.randn(B, L, D, device=dev) * 0.5).to(torch.bfloat16)
flop = 2 * L * (4 * D * D + 2 * D * HID) + 4 * L * L * D
print(f"\nspeed, one layer: batch {B}, length {L}; us a cell a layer (33 layers ~ cells/s)", flush=True)
base = None
for mode in ["bf16", "qkv", "qkv+l1", "qkv+l1+l2", "all"]:
    for rowwise, fast in ([(True, False)] if mode == "bf16" else [(True, False), (True, True), (False, True)]):
        if mode != "bf16" and not CAN["rowwise" if rowwise else "tensorwise"]:
            continue
        lay = Layer(w0, mode, rowwise, fast)
        try:
            us = timeit(lambda: lay(x0)) / B * 1e6
        except Exception as e:  # noqa: BLE001
            print(f"{mode:10s} rowwise={rowwise} fast={fast}: failed ({str(e).splitlines()[0][:100]})")
            continue
        base = base or us
        print(f"{mode:10s} {'rowwise' if rowwise else 'tensor '} fast_accum={int(fast)}: {us:6.1f} us "
              f"({flop / us / 1e6:5.0f} TFLOP/s, {base / us:4.2f}x bf16; 33 layers ~{1e6 / (us * 32.1):5.0f} cells/s)",
              flush=True)
xf = x0.reshape(-1, D)
x8 = xf.to(F8)
print(f"cast [B*L, {D}] bf16->e4m3: {timeit(lambda: xf.to(F8)) / B * 1e6:.2f} us/cell; "
      f"relu_ on [B*L, {HID}]: {timeit(lambda: torch.empty(B * L, HID, device=dev, dtype=torch.bfloat16).relu_()) / B * 1e6:.2f}")
for name, (m, n) in {"qkv": (3 * D, D), "l1": (HID, D), "l2": (D, HID), "out": (D, D)}.items():
    wb = torch.randn(m, n, device=dev, dtype=torch.bfloat16)
    xb = torch.randn(B * L, n, device=dev, dtype=torch.bfloat16)
    w8, ws = quant_w(wb.float(), True)
    xq = xb.to(F8)
    sa = torch.ones(B * L, 1, device=dev)
    tb = timeit(lambda: torch.mm(xb, wb.t()))
    t8 = timeit(lambda: torch._scaled_mm(xq, w8.t(), scale_a=sa, scale_b=ws, out_dtype=torch.bfloat16,
                                         use_fast_accum=True)) if CAN["rowwise"] else float("nan")
    fl = 2 * B * L * m * n
    print(f"GEMM {name:3s} [{B * L} x {n}] x [{n} x {m}]: bf16 {fl / tb / 1e12:5.0f} TFLOP/s, "
          f"fp8 rowwise fast {fl / t8 / 1e12:5.0f} TFLOP/s ({tb / t8:4.2f}x)", flush=True)

# ---- accuracy: NLAYERS random layers ------------------------------------------------------
print(f"\naccuracy: {NLAYERS} random layers, {NACC} cells of {L} tokens; cosine of CLS output to fp32", flush=True)
Layer.accuracy = True
gens = torch.Generator(device=dev)
gens.manual_seed(1)
ws_all = [make_layer(gens) for _ in range(NLAYERS)]
emb = F.layer_norm(torch.randn(NACC, L, D, device=dev, generator=gens), (D,)) * math.sqrt(D)
pos = torch.arange(L, device=dev).float().unsqueeze(1)
div = torch.exp(torch.arange(0, D, 2, device=dev).float() * (-math.log(10000.0) / D))
pe = torch.zeros(L, D, device=dev)
pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
x_in = emb + pe
s_in0 = (x_in.abs().amax() / F8MAX).float()


def run_stack(mode, rowwise=True, fast=False):
    layers = [Layer(w, mode, rowwise, fast) for w in ws_all]
    x = x_in if mode == "fp32" else x_in.to(torch.bfloat16)
    with torch.no_grad():
        for k, lay in enumerate(layers):
            # The static input scale of layer k > 0 comes from the previous norm2 (gamma 1, beta 0).
            s = s_in0 if k == 0 else (layers[k - 1].w["n2w"].float().abs() * math.sqrt(D) +
                                      layers[k - 1].w["n2b"].float().abs()).max() / F8MAX
            x = lay(x, s.float())
    return x[:, 0].float()


torch.backends.cuda.matmul.allow_tf32 = False
ref = run_stack("fp32")
for mode in ["bf16", "qkv", "qkv+l1", "qkv+l1+l2", "all"]:
    for rowwise, fast in ([(True, False)] if mode == "bf16" else [(True, False), (True, True), (False, True)]):
        if mode != "bf16" and not CAN["rowwise" if rowwise else "tensorwise"]:
            continue
        try:
            out = run_stack(mode, rowwise, fast)
        except Exception as e:  # noqa: BLE001
            print(f"{mode}: failed ({str(e).splitlines()[0][:100]})")
            continue
        cos = F.cosine_similarity(out, ref, dim=1)
        print(f"{mode:10s} {'rowwise' if rowwise else 'tensor '} fast_accum={int(fast)}: cosine mean {cos.mean():.6f} "
              f"min {cos.min():.6f}", flush=True)
