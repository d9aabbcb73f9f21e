#!/usr/bin/env bash
# Reading all of X from one .h5ad: our reader (bench_read_h5ad) vs anndata.read_h5ad.
#   usage: bench/read_h5ad.sh [BUILD_DIR (default: build)]
#   env:   BENCH_CELLS (200000), BENCH_GENES (20000), BENCH_DIR (/tmp/uce-bench-read),
#          BENCH_REPEAT (3: best of N, each run a fresh process), PYTHON (/usr/bin/python3)
# The file is generated once with `uce synth --single-dataset` (kept between runs while its size
# matches), the page cache is warmed, then each reader runs BENCH_REPEAT times. Prints the best
# time and peak RSS of each and the ratios. Needs ~3 GB of disk at full size.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
cells=${BENCH_CELLS:-200000}
genes=${BENCH_GENES:-20000}
dir=${BENCH_DIR:-/tmp/uce-bench-read}
repeat=${BENCH_REPEAT:-3}
python=${PYTHON:-/usr/bin/python3}
uce=$build/app/uce
bench=$build/bench/bench_read_h5ad
for p in "$uce" "$bench"; do
  [ -x "$p" ] || { echo "missing $p: build the targets uce and bench_read_h5ad first" >&2; exit 1; }
done

file=$dir/human_kidney.h5ad
stamp=$dir/bench.stamp
want="cells=$cells genes=$genes seed=1"
if [ ! -f "$file" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "generating $cells cells x $genes genes in $dir ..."
  rm -rf "$dir"
  t0=$(date +%s.%N)
  "$uce" synth --out "$dir" --cells "$cells" --genes "$genes" --seed 1 --single-dataset --no-assets --quiet
  t1=$(date +%s.%N)
  echo "$want" > "$stamp"
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "generated in %.1f s\n", b - a }'
fi
ls -l "$file"
cat "$file" > /dev/null  # warm the page cache for both readers

ours=""
for i in $(seq "$repeat"); do
  line=$("$bench" "$file")
  echo "ours:    $line"
  ours+="$line"$'\n'
done
theirs=""
for i in $(seq "$repeat"); do
  line=$("$python" - "$file" <<'PY'
import resource, sys, time, warnings
warnings.filterwarnings("ignore")
import anndata
t = time.perf_counter()
a = anndata.read_h5ad(sys.argv[1])
X = a.X
dt = time.perf_counter() - t
print(f"anndata_seconds={dt:.3f} rows={X.shape[0]} nnz={X.nnz} "
      f"peak_rss_mib={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}")
PY
)
  echo "anndata: $line"
  theirs+="$line"$'\n'
done

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
ours_s=$(printf '%s' "$ours" | field ours_seconds | sort -g | head -1)
ours_m=$(printf '%s' "$ours" | field peak_rss_mib | sort -g | head -1)
ours_nnz=$(printf '%s' "$ours" | field nnz | head -1)
py_s=$(printf '%s' "$theirs" | field anndata_seconds | sort -g | head -1)
py_m=$(printf '%s' "$theirs" | field peak_rss_mib | sort -g | head -1)
py_nnz=$(printf '%s' "$theirs" | field nnz | head -1)
[ "$ours_nnz" = "$py_nnz" ] || { echo "nnz differs: ours $ours_nnz, anndata $py_nnz" >&2; exit 1; }
echo
echo "file:     $file ($cells cells x $genes genes, nnz $ours_nnz)"
echo "ours:     ${ours_s} s, peak RSS ${ours_m} MiB (best of $repeat)"
echo "anndata:  ${py_s} s, peak RSS ${py_m} MiB (best of $repeat)"
awk -v a="$py_s" -v o="$ours_s" -v pm="$py_m" -v om="$ours_m" 'BEGIN {
  printf "speed:    ours is %.2fx faster than anndata (target >= 3x)\n", a / o;
  printf "memory:   ours uses %.2fx the peak RSS of anndata (target <= 1x)\n", om / pm }'
