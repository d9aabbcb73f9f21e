"""Training throughput and model FLOPs utilisation from a `uce train` metrics.jsonl.

usage: gpu_train_mfu.py METRICS.jsonl LAYERS D_MODEL D_HID TOKEN_DIM OUTPUT_DIM N_LOSS PEAK_TFLOPS [SKIP]

Model FLOPs are those of the computation the trainer performs, counted per real token:
forward = encoder (2 * token_dim * d) + per layer (8 d^2 + 4 d d_hid projections, 4 L d
attention), the last layer at the CLS position only (4 d^2 key/value projections per token),
plus the CLS decoder and the binary gene head per cell; training = 3 x forward. Recomputation
under activation checkpointing is not counted (that is what MFU means). Steps before SKIP are
warm-up and left out; the median step is reported.
"""
import json
import statistics
import sys


def main():
    path = sys.argv[1]
    layers, d, dhid, tdim, out, nloss = (int(x) for x in sys.argv[2:8])
    peak = float(sys.argv[8]) * 1e12
    skip = int(sys.argv[9]) if len(sys.argv) > 9 else 3
    rows = [json.loads(l) for l in open(path) if l.strip()]
    rows = [r for r in rows if r["step"] > skip] or rows
    cells = statistics.median(r["cells_per_s"] for r in rows)
    tokens = statistics.median(r["tokens_per_s"] for r in rows)
    L = tokens / cells  # mean real tokens per cell
    per_token = 2 * tdim * d + (layers - 1) * (8 * d * d + 4 * d * dhid + 4 * L * d) + 4 * d * d
    per_cell = per_token * L + 4 * L * d + 2 * (8 * d * d + 4 * d * dhid)  # + last layer at CLS
    per_cell += 2 * (d * 1024 + 1024 * out + 2 * out * out)  # decoder
    per_cell += nloss * 2 * (tdim * 1280 + (out + 1280) * 2048 + 2048 * 512 + 512 * 128 + 128)
    flops = 3 * per_cell * cells
    print(f"train {layers} layers: {cells:.1f} cells/s, {tokens:,.0f} tokens/s "
          f"({L:.0f} tokens/cell), {flops / 1e12:.1f} TFLOP/s = {100 * flops / peak:.1f}% MFU "
          f"(peak {peak / 1e12:.0f} TFLOP/s bf16 dense), median of {len(rows)} steps")


if __name__ == "__main__":
    main()
