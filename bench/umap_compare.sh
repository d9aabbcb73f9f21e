#!/usr/bin/env bash
# Our UMAP vs umap-js on the same input and the same kNN graph: time and trustworthiness (k=15).
#   bash bench/umap_compare.sh BUILD_DIR [CELLS] [DIM] [THREADS] [EPOCHS]
# umap-js is installed with npm into $UMAPJS_DIR (default /tmp/umapjs; `npm install umap-js`
# there once, the npm registry is needed only for that). umap-learn (the issue's baseline) is
# not installable here (no PyPI), so umap-js, the same algorithm in JavaScript, stands in.
set -euo pipefail
build=${1:?usage: umap_compare.sh BUILD_DIR [CELLS] [DIM] [THREADS] [EPOCHS]}
cells=${2:-20000}; dim=${3:-64}; threads=${4:-2}; epochs=${5:-200}
here=$(cd "$(dirname "$0")" && pwd)
js=${UMAPJS_DIR:-/tmp/umapjs}
if [ ! -d "$js/node_modules/umap-js" ]; then
  mkdir -p "$js" && (cd "$js" && npm init -y >/dev/null && npm install umap-js >/dev/null)
fi
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
bench="$build/bench/bench_analysis_umap"
common=(--cells "$cells" --dim "$dim" --threads "$threads" --epochs "$epochs" --seed 1)
"$bench" "${common[@]}" --export "$work" | tee "$work/ours.txt"
NODE_PATH="$js/node_modules" node "$here/umap_js_run.js" "$work" 2 "$epochs" 1 | tee "$work/js.txt"
"$bench" "${common[@]}" --no-umap --score "$work/umapjs.f32" | grep trust | tee "$work/js_score.txt"
ours=$(awk '/^umap_seconds/{print $2}' "$work/ours.txt")
theirs=$(awk '/^umapjs_seconds/{print $2}' "$work/js.txt")
t_ours=$(awk '/^umap_trustworthiness/{print $2}' "$work/ours.txt")
t_js=$(awk '/^other_trustworthiness/{print $2}' "$work/js_score.txt")
echo "summary cells=$cells dim=$dim threads=$threads epochs=$epochs ours=${ours}s umap-js=${theirs}s" \
     "speedup=$(awk -v a="$theirs" -v b="$ours" 'BEGIN{printf "%.2f", a/b}')x" \
     "trust_ours=$t_ours trust_umapjs=$t_js diff=$(awk -v a="$t_ours" -v b="$t_js" 'BEGIN{printf "%+.4f", a-b}')"
