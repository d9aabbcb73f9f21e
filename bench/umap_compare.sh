#!/usr/bin/env bash
# Our UMAP vs umap-learn (the issue's baseline) and umap-js on the same input and the same kNN
# graph: time of the map (kNN excluded) and trustworthiness (k = 15), as ratios.
#   bash bench/umap_compare.sh BUILD_DIR [CELLS] [DIM] [THREADS] [EPOCHS]
# umap-learn: Debian's package `umap-learn` (0.5.3; `apt-get install umap-learn`), run by
# /usr/bin/python3 with NUMBA_NUM_THREADS=THREADS, twice: its default spectral initialisation and
# the random one ours falls back to on a disconnected graph. Skipped (with a line saying so) when
# not installed. umap-js: installed with npm into $UMAPJS_DIR (default /tmp/umapjs) on first use;
# UMAPJS=0 skips it (it is slow at 50,000 cells and more). Ours and umap-learn each map REPEATS
# times (default 3) and the fastest time counts; umap-js, the slowest by far, maps once.
set -euo pipefail
build=${1:?usage: umap_compare.sh BUILD_DIR [CELLS] [DIM] [THREADS] [EPOCHS]}
cells=${2:-20000}; dim=${3:-64}; threads=${4:-2}; epochs=${5:-200}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
bench="$build/bench/bench_analysis_umap"
common=(--cells "$cells" --dim "$dim" --threads "$threads" --epochs "$epochs" --seed 1)
"$bench" "${common[@]}" --repeats "${REPEATS:-3}" --export "$work" | tee "$work/ours.txt"
ours=$(awk '/^umap_seconds/{print $2}' "$work/ours.txt")
t_ours=$(awk '/^umap_trustworthiness/{print $2}' "$work/ours.txt")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
delta() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%+.4f", a-b}'; }
score() { "$bench" "${common[@]}" --graph "$work" --no-umap --score "$1" | awk '/^other_trustworthiness/{print $2}'; }

if /usr/bin/python3 -c "import umap" 2>/dev/null; then
  for init in spectral random; do
    REPEATS=${REPEATS:-3} NUMBA_NUM_THREADS="$threads" /usr/bin/python3 "$here/umap_learn_run.py" "$work" 2 "$epochs" "$init" | tee "$work/ul_$init.txt"
    secs=$(awk '/^umaplearn_seconds/{print $2}' "$work/ul_$init.txt")
    t=$(score "$work/umaplearn_$init.f32")
    echo "summary umap-learn init=$init cells=$cells dim=$dim threads=$threads epochs=$epochs ours=${ours}s" \
         "umap-learn=${secs}s speedup=$(ratio "$secs" "$ours")x trust_ours=$t_ours trust_umaplearn=$t diff=$(delta "$t_ours" "$t")"
  done
else
  echo "summary umap-learn not installed (apt-get install umap-learn): skipped"
fi

if [ "${UMAPJS:-1}" != 0 ]; then
  js=${UMAPJS_DIR:-/tmp/umapjs}
  if [ ! -d "$js/node_modules/umap-js" ]; then
    mkdir -p "$js" && (cd "$js" && npm init -y >/dev/null && npm install umap-js >/dev/null)
  fi
  NODE_PATH="$js/node_modules" node "$here/umap_js_run.js" "$work" 2 "$epochs" 1 | tee "$work/js.txt"
  theirs=$(awk '/^umapjs_seconds/{print $2}' "$work/js.txt")
  t_js=$(score "$work/umapjs.f32")
  echo "summary umap-js cells=$cells dim=$dim threads=$threads epochs=$epochs ours=${ours}s umap-js=${theirs}s" \
       "speedup=$(ratio "$theirs" "$ours")x trust_ours=$t_ours trust_umapjs=$t_js diff=$(delta "$t_ours" "$t_js")"
fi
