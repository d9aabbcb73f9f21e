#!/usr/bin/env bash
# Installs every Debian 12 package that building, testing and running UCE Atlas needs.
# Idempotent: packages already present are skipped by apt. Quiet unless something fails.
set -euo pipefail

PKGS=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  # GUI
  qt6-base-dev libqt6opengl6-dev libvtk9-dev libgl-dev xvfb xauth
  # ML / numerics
  libtorch-dev libgloo-dev libfaiss-dev libopenblas-dev libeigen3-dev libspectra-dev
  libigraph-dev libglpk-dev libplfit-dev libarpack2-dev libgmp-dev
  # I/O
  libhdf5-dev zlib1g-dev
  # interop tests and benchmarks (Debian's own interpreter: /usr/bin/python3)
  python3-anndata python3-scipy python3-sklearn python3-torch python3-h5py python3-pandas
)

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

log=$(mktemp /tmp/uce-install-deps.XXXXXX.log)
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get update -q && \
       $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  echo "install-deps: apt-get failed installing: ${missing[*]}" >&2
  tail -n 40 "$log" >&2
  exit 1
fi
rm -f "$log"
