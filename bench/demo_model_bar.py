"""Issue 4's bar over seeds (run by bench/demo_model_bar.sh, which documents it).

usage: demo_model_bar.py OUTDIR LABEL "SEEDS" "RANDOM_INITS" "RANDOM_SEEDS" MODEL WORLD_SEED
Reads bench/eval_seeds.sh's OUTDIR/LABEL_sS.json and OUTDIR/randomR_sS.json, prints per
held-out dataset the model's mean (sd) over its sentence seeds, PCA's scores, each random init's
mean over its sentence seeds and the mean over all inits, then whether the model's cell-type ASW
is above PCA's and its batch ASW above the random inits' mean; writes OUTDIR/bar.json.
"""
import json
import sys

import numpy as np


def sd(x):
    return float(x.std(ddof=1)) if len(x) > 1 else 0.0


def load(outdir, label, seeds):
    return [json.load(open(f"{outdir}/{label}_s{s}.json"))["datasets"] for s in seeds]


def main():
    outdir, label = sys.argv[1], sys.argv[2]
    seeds, inits, rseeds = sys.argv[3].split(), sys.argv[4].split(), sys.argv[5].split()
    model_path, world_seed = sys.argv[6], int(sys.argv[7])
    runs = load(outdir, label, seeds)
    rand = {r: load(outdir, f"random{r}", rseeds) for r in inits}
    summary = {"model": model_path, "world_seed": world_seed, "sentence_seeds": seeds,
               "random_inits": inits, "random_sentence_seeds": rseeds, "datasets": {}}
    print(f"world seed {world_seed}; {model_path} over sentence seeds {' '.join(seeds)}; "
          f"random inits {' '.join(inits)} over sentence seeds {' '.join(rseeds)}")
    met = True
    for ds in runs[0]:
        def scores(rs, lab, key):
            return np.array([r[ds][lab][key] for r in rs])
        m_type, m_batch = scores(runs, label, "type_asw"), scores(runs, label, "batch_asw")
        m_cond = scores(runs, label, "batch_asw_condition") if "batch_asw_condition" in runs[0][ds][label] else None
        pca = runs[0][ds]["pca"]
        per_init = {r: (float(scores(rand[r], f"random{r}", "batch_asw").mean()),
                        float(scores(rand[r], f"random{r}", "type_asw").mean())) for r in inits}
        init_batch = np.array([v[0] for v in per_init.values()])
        r_mean = float(init_batch.mean())
        type_ok = bool(m_type.mean() > pca["type_asw"])
        batch_ok = bool(m_batch.mean() > r_mean)
        met = met and type_ok and batch_ok
        beaten = int((m_batch.mean() > init_batch).sum())
        print(f"{ds} ({runs[0][ds]['cells']} cells)")
        print(f"  model        cell-type ASW {m_type.mean():+.3f} ({sd(m_type):.3f})   batch ASW {m_batch.mean():.3f} ({sd(m_batch):.3f})"
              + (f"   same condition {m_cond.mean():.3f}" if m_cond is not None else ""))
        print(f"  PCA          cell-type ASW {pca['type_asw']:+.3f}           batch ASW {pca['batch_asw']:.3f}")
        for r, (b, t) in per_init.items():
            print(f"  random {r:<5s} cell-type ASW {t:+.3f}           batch ASW {b:.3f}")
        print(f"  random mean                              batch ASW {r_mean:.3f} ({sd(init_batch):.3f} over inits)")
        print(f"  cell-type ASW above PCA: {'yes' if type_ok else 'NO'} ({m_type.mean() - pca['type_asw']:+.3f}); "
              f"batch ASW above the random inits' mean: {'yes' if batch_ok else 'NO'} ({m_batch.mean() - r_mean:+.3f}; "
              f"above {beaten} of {len(inits)} inits)")
        summary["datasets"][ds] = {
            "model": {"type_asw": float(m_type.mean()), "type_asw_sd": sd(m_type), "batch_asw": float(m_batch.mean()),
                      "batch_asw_sd": sd(m_batch),
                      "batch_asw_condition": float(m_cond.mean()) if m_cond is not None else None},
            "pca": {"type_asw": pca["type_asw"], "batch_asw": pca["batch_asw"], "recipe": pca.get("recipe")},
            "random_inits": {r: {"batch_asw": b, "type_asw": t} for r, (b, t) in per_init.items()},
            "random_batch_asw_mean": r_mean, "random_batch_asw_sd_over_inits": sd(init_batch),
            "type_above_pca": type_ok, "batch_above_random_mean": batch_ok, "random_inits_beaten": beaten}
    summary["bar_met"] = met
    print(f"bar met on every held-out dataset: {'yes' if met else 'NO'}")
    with open(f"{outdir}/bar.json", "w") as f:
        json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
