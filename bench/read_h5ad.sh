#!/usr/bin/env bash
# Reading all of X from one .h5ad: our reader (bench_read_h5ad) vs anndata.read_h5ad.
#   usage: bench/read_h5ad.sh [BUILD_DIR (default: build)]
#   env:   BENCH_CELLS (200000), BENCH_GENES (20000), BENCH_DIR (/tmp/uce-bench-read),
#          BENCH_REPEAT (3: best of N, each run a fresh process), PYTHON (/usr/bin/python3)
# The file is generated once with `uce synth --single-dataset` (kept between runs while its size
# matches), the page cache is warmed, then each reader runs BENCH_REPEAT times. Ours runs in two
# modes: streamed (RowStream, 4,096-row blocks, bounded memory: how the embedder reads) and full
# load (one readRows over all rows into one CSR: what anndata does). Prints the best time and
# peak RSS of each and the ratios against anndata. Needs ~3 GB of disk at full size.
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
[ -x "$bench" ] || { echo "missing $bench: build the target bench_read_h5ad first" >&2; exit 1; }

file=$dir/human_kidney.h5ad
stamp=$dir/bench.stamp
want="cells=$cells genes=$genes seed=1"
if [ ! -f "$file" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  [ -x "$uce" ] || { echo "missing $uce: build the target uce first" >&2; exit 1; }
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

# One round = ours streamed, ours full load, anndata, each a fresh process; rounds alternate so
# that load from other work on the machine hits all three alike.
anndata_run() {
  "$python" - "$file" <<'PY'
import resource, sys, time, warnings
warnings.filterwarnings("ignore")
import anndata
t = time.perf_counter()
a = anndata.read_h5ad(sys.argv[1])
X = a.X
dt = time.perf_counter() - t
print(f"mode=anndata seconds={dt:.3f} rows={X.shape[0]} nnz={X.nnz} "
      f"peak_rss_mib={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}")
PY
}
runs=""
for i in $(seq "$repeat"); do
  for mode in stream full; do
    line=$("$bench" "$file" --mode "$mode")
    echo "ours:    $line"
    runs+="$line"$'\n'
  done
  line=$(anndata_run)
  echo "anndata: $line"
  runs+="$line"$'\n'
done

# best MODE FIELD: the smallest FIELD over the runs of MODE
best() {
  printf '%s' "$runs" | grep "mode=$1 " | sed -n "s/.* $2=\([0-9.]*\).*/\1/p" | sort -g | head -1
}
nnz_of() { printf '%s' "$runs" | grep "mode=$1 " | sed -n 's/.* nnz=\([0-9]*\).*/\1/p' | sort -u; }
for mode in stream full; do
  [ "$(nnz_of $mode)" = "$(nnz_of anndata)" ] ||
    { echo "nnz differs: ours ($mode) $(nnz_of $mode), anndata $(nnz_of anndata)" >&2; exit 1; }
done
py_s=$(best anndata seconds)
py_m=$(best anndata peak_rss_mib)
echo
echo "file:     $file ($cells cells x $genes genes, nnz $(nnz_of anndata)), best of $repeat"
printf '%-24s %8s %8s %14s %12s\n' "" seconds speed "peak RSS MiB" "RSS ratio"
for mode in anndata stream full; do
  s=$(best $mode seconds)
  m=$(best $mode peak_rss_mib)
  case $mode in
    anndata) label="anndata.read_h5ad" ;;
    stream) label="ours, RowStream 4096" ;;
    full) label="ours, one readRows" ;;
  esac
  awk -v l="$label" -v a="$py_s" -v o="$s" -v pm="$py_m" -v om="$m" \
    'BEGIN { printf "%-24s %8.3f %7.2fx %14.1f %11.2fx\n", l, o, a / o, om, om / pm }'
done
echo "targets:  speed (anndata seconds / ours) >= 3x, RSS ratio (ours / anndata) <= 1x"
echo "machine:  $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
