"""PyTorch reference forward pass of a UCE network (the spec's torch.nn modules, as in
tests/model/uce_reference.py), timed on the GPU: cells/s in fp32 and under bf16 autocast on
random cell sentences of the release's typical length (1,075 tokens). Run by bench/gpu_embed.sh.

usage: gpu_reference.py MODEL.torch NHEAD BATCH_FP32 BATCH_BF16 [CELLS] [DEVICE=cuda]
"""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "model"))
from uce_reference import Uce  # noqa: E402


def main():
    path, nhead, b32, b16 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    cells = int(sys.argv[5]) if len(sys.argv) > 5 else 2000
    dev = sys.argv[6] if len(sys.argv) > 6 else "cuda"
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    sd = torch.load(path, map_location="cpu")
    n_tokens, token_dim = sd["pe_embedding.weight"].shape
    d_model = sd["encoder.0.weight"].shape[0]
    d_hid = sd["transformer_encoder.layers.0.linear1.weight"].shape[0]
    out_dim = sd["decoder.3.weight"].shape[0]
    layers = len({k.split(".")[2] for k in sd if k.startswith("transformer_encoder.layers.")})
    m = Uce(n_tokens, token_dim, d_model, nhead, d_hid, layers, out_dim)
    m.load_state_dict(sd, strict=False)
    m = m.to(dev).eval()
    g = torch.Generator().manual_seed(0)
    L = 1075
    runs = [("fp32", b32, False), ("bf16", b16, True)]
    if dev == "cpu":  # dry runs only: old CPU builds of torch lack bf16 autocast for LayerNorm
        runs = runs[:1]
    for name, batch, autocast in runs:
        tokens = torch.randint(4, n_tokens, (batch, L), generator=g).to(dev)
        tokens[:, 0] = 3
        keep = torch.ones(batch, L, dtype=torch.bool, device=dev)
        with torch.no_grad(), torch.autocast(dev, dtype=torch.bfloat16, enabled=autocast):
            m(tokens, keep)  # warm-up
            sync()
            t = time.time()
            done = 0
            while done < cells:
                m(tokens, keep)
                done += batch
            sync()
            rate = done / (time.time() - t)
        print(f"reference pytorch {layers}-layer {name} batch {batch}: {rate:.1f} cells/s")


if __name__ == "__main__":
    main()
