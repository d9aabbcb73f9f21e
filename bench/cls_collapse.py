"""How much a UCE model's cell embedding depends on the cell: feeds random cell sentences drawn
from two disjoint halves of the gene vocabulary through the spec's torch.nn network
(tests/model/uce_reference.py) and prints, layer by layer, the mean cosine between different
cells' CLS states, then through the decoder blocks. A healthy model keeps cells apart; the
collapsed demo-model candidates (issue 4) sit at cosine 0.9999 after the first layer.

usage: /usr/bin/python3 bench/cls_collapse.py MODEL.torch ASSETS_DIR NHEAD [GENES_PER_SPECIES=2000] [LEN=300]
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "model"))
from uce_reference import Uce  # noqa: E402


def mean_offdiag_cos(v):
    v = F.normalize(v, dim=1)
    c = v @ v.T
    return float(c[~torch.eye(len(v), dtype=torch.bool)].mean())


def main():
    path, assets, nhead = sys.argv[1], sys.argv[2], int(sys.argv[3])
    genes = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
    length = int(sys.argv[5]) if len(sys.argv) > 5 else 300
    sd = dict(torch.load(path, map_location="cpu"))
    if "pe_embedding.weight" not in sd:
        sd["pe_embedding.weight"] = torch.load(os.path.join(assets, "all_tokens.torch"), map_location="cpu")
    n_tokens, token_dim = sd["pe_embedding.weight"].shape
    d = sd["encoder.0.weight"].shape[0]
    layers = len({k.split(".")[2] for k in sd if k.startswith("transformer_encoder.layers.")})
    m = Uce(n_tokens, token_dim, d, nhead, sd["transformer_encoder.layers.0.linear1.weight"].shape[0], layers,
            sd["decoder.3.weight"].shape[0])
    m.load_state_dict(sd, strict=False)
    m.eval()
    g = torch.Generator().manual_seed(0)
    half = genes // 2
    t = torch.randint(0, half, (16, length), generator=g)
    t[8:] += half  # cells 8-15 use the other half of the genes
    t[:, 0] = n_tokens - 1  # a non-gene token in the CLS slot
    with torch.no_grad():
        x = F.normalize(m.pe_embedding(t), dim=2).permute(1, 0, 2)
        x = m.pos_encoder(m.encoder(x) * math.sqrt(d))
        print(f"input: CLS cosine {mean_offdiag_cos(x[0]):.6f}, mean-token cosine {mean_offdiag_cos(x.mean(0)):.6f}")
        for i, layer in enumerate(m.transformer_encoder.layers):
            x = layer(x)
            print(f"after layer {i}: CLS cosine between cells {mean_offdiag_cos(x[0]):.6f}")
        h = x[0]
        for j, block in enumerate(m.decoder):
            h = block(h)
            print(f"after decoder.{j}: cosine {mean_offdiag_cos(h):.6f}")


if __name__ == "__main__":
    main()
