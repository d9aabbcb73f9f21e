"""Can UCE's masked-gene objective teach a cell embedding the cell's type in a few hundred steps?
Trains only the training head of UCE_SPEC section 4 (gene_embedding_layer and the binary decoder,
2048-512-128 blocks, AdamW) on one labelled .h5ad of `uce synth` with its protein embeddings,
with one of two cell encoders in place of the transformer:
  type  an oracle: a fixed random unit vector per cell type (what a perfect model could give);
  pool  a learned mean-pool: the mean of Linear-GELU-LayerNorm token vectors over the cell's
        sentence (128 genes drawn with replacement, weights log1p of normalised counts, from
        the 80 % of expressed genes left after masking), then a small MLP, L2-normalised.
  uce   the spec's network (tests/model/uce_reference.py, NL layers, default 2; d_model 64, 4
        heads) on the sentence with a CLS token in front, in training mode (dropout on unless
        NODROP=1), its encoder and transformer stepping at ELR x LR (default 1) and frozen for
        the first FREEZE steps (default 0).
Prints the validation masked-gene AUROC every EVERY steps (default 200; for `pool` and `uce` also
the cell-type ASW and the mean cosine between the embeddings of 300 validation cells). Session 7
used `uce` on bench/two_type_world.py's world (a DATASET link in WORLD_DIR) to find the
collapse that `uce train --encoder-lr-scale` prevents. Session 5 of issue 4 (bench/RESULTS.md) used it to show
that the decoder learns from a clean type signal in ~200 steps, so the transformer encoder is
what fails to provide one. Negatives come from genes detected in >= 10 cells, as in `uce train`
(before session 6 they came from all genes, which made every AUROC here higher than the
trainer's on the same cells).

usage: /usr/bin/python3 bench/objective_learnability.py WORLD_DIR DATASET type|pool|uce STEPS LR [uniform|frequency]
       e.g. WORLD_DIR=/tmp/uce-demo-model/world DATASET=human_kidney
"""
import sys

import anndata
import numpy as np
import os

import torch
from sklearn.metrics import roc_auc_score, silhouette_score


def main():
    world, dataset, mode, steps, lr = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
    negatives = sys.argv[6] if len(sys.argv) > 6 else "frequency"
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    stem = "Homo_sapiens.GRCh38" if dataset.startswith("human") else "Mus_musculus.GRCm39"
    pe = torch.load(f"{world}/assets/protein_embeddings/{stem}.gene_symbol_to_embedding_ESM2.pt")
    a = anndata.read_h5ad(f"{world}/{dataset}.h5ad")
    P = torch.nn.functional.normalize(torch.stack([pe[g.upper()] for g in a.var_names]).float(), dim=1)
    X = a.X.tocsr()
    freq = np.asarray((X > 0).mean(0)).ravel()
    usable = np.flatnonzero(freq * X.shape[0] >= 10)  # the trainer ignores genes seen in < 10 cells
    types = a.obs["cell_type"].astype(str).values
    tid = np.searchsorted(np.unique(types), types)
    order = rng.permutation(X.shape[0])
    train, val = order[: X.shape[0] * 4 // 5], order[X.shape[0] * 4 // 5:]
    D = 64
    typevec = torch.nn.functional.normalize(torch.randn(tid.max() + 1, D), dim=1)

    def sample(cells):
        G, Y, S = [], [], []
        for c in cells:
            e = X.indices[X.indptr[c]:X.indptr[c + 1]]
            v = X.data[X.indptr[c]:X.indptr[c + 1]]
            mi = rng.choice(len(e), max(1, int(round(0.2 * len(e)))), replace=False)
            keep = np.ones(len(e), bool)
            keep[mi] = False
            w = np.log1p(v[keep] / v.sum() * 1e4)
            S.append(rng.choice(e[keep], 128, replace=True, p=w / w.sum()))
            pos = rng.choice(e[mi], 32, replace=len(mi) < 32)
            un = np.setdiff1d(usable, e)
            p = freq[un] + 1e-6 if negatives == "frequency" else np.ones(len(un))
            G.append(np.concatenate([pos, rng.choice(un, 32, replace=False, p=p / p.sum())]))
            Y.append([1] * 32 + [0] * 32)
        return (np.asarray(cells), torch.tensor(np.array(G, dtype=np.int64)), torch.tensor(np.array(Y, dtype=np.float32)),
                torch.tensor(np.array(S, dtype=np.int64)))

    def block(i, o):
        return torch.nn.Sequential(torch.nn.Linear(i, o), torch.nn.LayerNorm(o), torch.nn.GELU())

    gene_layer = torch.nn.Sequential(torch.nn.Linear(P.shape[1], D), torch.nn.GELU(), torch.nn.LayerNorm(D))
    decoder = torch.nn.Sequential(block(2 * D, 2048), block(2048, 512), block(512, 128), torch.nn.Linear(128, 1))
    token = torch.nn.Sequential(torch.nn.Linear(P.shape[1], D), torch.nn.GELU(), torch.nn.LayerNorm(D))
    cell_mlp = torch.nn.Sequential(block(D, 256), block(256, D), torch.nn.Linear(D, D))
    modules = [gene_layer, decoder, token, cell_mlp]
    opt = torch.optim.AdamW([p for m in modules for p in m.parameters()], lr=lr, weight_decay=0.01)

    env = os.environ
    freeze, elr = int(env.get("FREEZE", "0")), float(env.get("ELR", "1"))
    if mode == "uce":
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "model"))
        from uce_reference import Uce
        uce = Uce(P.shape[0] + 1, P.shape[1], D, 4, 128, int(env.get("NL", "2")), D)
        with torch.no_grad():  # the genes' vectors, then a random CLS token
            uce.pe_embedding.weight[:-1] = P
            uce.pe_embedding.weight[-1] = torch.nn.functional.normalize(torch.randn(P.shape[1]), dim=0)
        uce.pe_embedding.weight.requires_grad_(False)
        if env.get("NODROP"):
            for m in uce.modules():
                if isinstance(m, torch.nn.Dropout):
                    m.p = 0.0
            for layer in uce.transformer_encoder.layers:
                layer.dropout.p = layer.dropout1.p = layer.dropout2.p = 0.0
        opt = torch.optim.AdamW([{"params": [p for m in modules for p in m.parameters()]},
                                 {"params": [p for p in uce.parameters() if p.requires_grad]}], lr=lr, weight_decay=0.01)

    def cell_embedding(C, S):
        if mode == "type":
            return typevec[tid[C]]
        if mode == "uce":
            T = torch.cat([torch.full((S.shape[0], 1), P.shape[0]), S], 1)
            return uce(T, torch.ones_like(T, dtype=torch.bool))
        return torch.nn.functional.normalize(cell_mlp(token(P[S]).mean(1)), dim=1)

    def logits(C, G, S):
        c = cell_embedding(C, S).unsqueeze(1).expand(-1, G.shape[1], -1)
        return decoder(torch.cat([c, gene_layer(P[G])], -1)).squeeze(-1)

    Cv, Gv, Yv, Sv = sample(val[:300])
    every = int(env.get("EVERY", "200"))
    for step in range(steps + 1):
        if step % every == 0:
            with torch.no_grad():
                auroc = roc_auc_score(Yv.numpy().ravel(), logits(Cv, Gv, Sv).numpy().ravel())
                extra = ""
                if mode in ("pool", "uce"):
                    e = cell_embedding(Cv, Sv)
                    extra = "  type ASW %.3f  mean cosine %.5f" % (silhouette_score(e.numpy(), tid[Cv]),
                                                                    float((e @ e.T).mean()))
            print(f"{mode} {negatives} step {step}: val AUROC {auroc:.4f}{extra}", flush=True)
        if mode == "uce":
            opt.param_groups[1]["lr"] = 0.0 if step < freeze else lr * elr
        C, G, Y, S = sample(rng.choice(train, 32))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits(C, G, S), Y)
        opt.zero_grad()
        loss.backward()
        opt.step()


if __name__ == "__main__":
    main()
