"""Reference UCE network written with torch.nn modules, following UCE_SPEC section 4, with a
boolean key-padding mask. Used by the parity tests: builds random weights, saves the state dict
and token table in the release's formats, and the reference embeddings of random sentences.

usage: uce_reference.py OUTDIR NLAYERS SEED
"""
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


def full_block(i, o):
    return nn.Sequential(nn.Linear(i, o), nn.LayerNorm(o), nn.GELU(), nn.Dropout(0.1))


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, max_len=1536):
        super().__init__()
        position = torch.arange(max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, 1, d_model)
        pe[:, 0, 0::2] = torch.sin(position * div_term)
        pe[:, 0, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe)

    def forward(self, x):  # [L, B, d]
        return x + self.pe[: x.size(0)]


class Uce(nn.Module):
    def __init__(self, n_tokens, token_dim, d_model, nhead, d_hid, nlayers, output_dim):
        super().__init__()
        self.d_model = d_model
        self.pe_embedding = nn.Embedding(n_tokens, token_dim)
        self.encoder = nn.Sequential(nn.Linear(token_dim, d_model), nn.GELU(), nn.LayerNorm(d_model))
        self.pos_encoder = PositionalEncoding(d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead, d_hid, dropout=0.05)
        self.transformer_encoder = nn.TransformerEncoder(layer, nlayers, enable_nested_tensor=False)
        self.decoder = nn.Sequential(full_block(d_model, 1024), full_block(1024, output_dim),
                                     full_block(output_dim, output_dim), nn.Linear(output_dim, output_dim))
        self.gene_embedding_layer = nn.Sequential(nn.Linear(token_dim, d_model), nn.GELU(), nn.LayerNorm(d_model))
        self.binary_decoder = nn.Sequential(full_block(output_dim + d_model, 2048), full_block(2048, 512),
                                            full_block(512, 128), nn.Linear(128, 1))

    def forward(self, tokens, keep):  # tokens [B, L] long, keep [B, L] bool (True = real token)
        x = F.normalize(self.pe_embedding(tokens), dim=2).permute(1, 0, 2)  # [L, B, t]
        x = self.encoder(x) * math.sqrt(self.d_model)
        x = self.pos_encoder(x)
        x = self.transformer_encoder(x, src_key_padding_mask=~keep)
        return F.normalize(self.decoder(x[0]), dim=1)


def main():
    out, nlayers, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.manual_seed(seed)
    n_tokens, token_dim, d_model, nhead, d_hid, output_dim = 300, 48, 64, 4, 96, 40
    m = Uce(n_tokens, token_dim, d_model, nhead, d_hid, nlayers, output_dim).eval()
    with torch.no_grad():  # larger than default init so that layers matter
        for p in m.parameters():
            if p.dim() == 2:
                p.mul_(2.0)
    B, L = 6, 40
    tokens = torch.randint(4, n_tokens, (B, L))
    tokens[:, 0] = 3
    lengths = torch.tensor([40, 33, 17, 40, 5, 26])
    keep = torch.arange(L)[None, :] < lengths[:, None]
    tokens[~keep] = 0
    with torch.no_grad():
        ref = m(tokens, keep)
        alone = torch.stack([m(tokens[i:i + 1, : lengths[i]], keep[i:i + 1, : lengths[i]])[0] for i in range(B)])
    torch.save(m.state_dict(), out + "/model.torch")
    torch.save(m.pe_embedding.weight.detach().clone(), out + "/all_tokens.torch")
    torch.save({"tokens": tokens, "keep": keep.to(torch.uint8), "expected": ref, "alone": alone},
               out + "/case.pt")


if __name__ == "__main__":
    main()
