#!/usr/bin/env bash
# Installs the .deb into this machine as a user would, smoke-tests the installed programs and
# removes the package again (CI runs this after the build; it changes the system, so run it on
# a disposable machine, as root or with sudo):
#   installer/smoke-test.sh [PACKAGE.deb (build/uce-atlas_*.deb)] [PBMC.h5ad (../shared/data/pbmc_small.h5ad)]
# Checks: apt-get install ./PACKAGE.deb resolves its Depends; uce --version; uce info on the
# PBMC file; the .h5ad MIME type is registered; uce-atlas --self-test under Xvfb (when the app
# has it; otherwise uce-atlas --version); the installed app opens the installed demo atlas;
# apt-get purge leaves nothing of the package behind.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
deb=${1:-$(ls "$here"/../build/uce-atlas_*_amd64.deb 2>/dev/null | head -n 1)}
pbmc=${2:-$here/../../shared/data/pbmc_small.h5ad}
[ -f "$deb" ] || { echo "error: no package: pass the .deb (cd build && cpack -G DEB makes it)" >&2; exit 2; }
[ -f "$pbmc" ] || { echo "error: $pbmc is missing: pass the PBMC .h5ad as the second argument" >&2; exit 2; }
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

if dpkg-query -W -f='${Status}' uce-atlas 2>/dev/null | grep -q "install ok installed"; then
  echo "error: uce-atlas is already installed here; remove it first (apt-get remove uce-atlas)," \
       "this test installs and removes it itself" >&2
  exit 2
fi

step() { echo "== $*"; }
installed=0
cleanup() {
  if [ "$installed" = 1 ]; then $SUDO apt-get purge -y -q uce-atlas >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

step "apt-get install $deb"
start=$(date +%s)
$SUDO apt-get install -y -q --no-install-recommends "$deb"
installed=1
echo "installed in $(($(date +%s) - start)) s"
dpkg -L uce-atlas | grep -E '^/usr/(bin|share/(applications|mime/packages|icons/hicolor/scalable))/' || true

# The installed programs, not whatever is on PATH or LD_LIBRARY_PATH from a build.
unset LD_LIBRARY_PATH
work=$(mktemp -d)
cd "$work"

step "uce --version"
/usr/bin/uce --version

step "uce info $(basename "$pbmc")"
/usr/bin/uce info "$pbmc"

if [ -f /usr/share/mime/globs2 ]; then
  step "MIME type"
  grep -F 'application/x-h5ad:*.h5ad' /usr/share/mime/globs2
fi

if [ -x /usr/bin/uce-atlas ]; then
  if QT_QPA_PLATFORM=offscreen /usr/bin/uce-atlas --help 2>&1 | grep -q -- '--self-test'; then
    step "uce-atlas --self-test (Xvfb)"
    xvfb-run -a -s "-screen 0 1600x1000x24" env QT_QPA_PLATFORM=xcb /usr/bin/uce-atlas --self-test
  else
    step "uce-atlas --version (this build has no --self-test)"
    QT_QPA_PLATFORM=offscreen /usr/bin/uce-atlas --version
  fi
fi
if [ -x /usr/bin/uce-atlas ] && [ -d /usr/share/uce-atlas/demo ]; then
  step "uce-atlas --demo-dataset human_kidney --screenshot (Xvfb; the installed demo atlas)"
  env -u UCE_DEMO_DIR HOME="$work" XDG_CACHE_HOME="$work/cache" UCE_SETTINGS_FILE="$work/settings.ini" \
    xvfb-run -a -s "-screen 0 1600x1000x24" env QT_QPA_PLATFORM=xcb \
    /usr/bin/uce-atlas --demo-dataset human_kidney --screenshot "$work/demo.png"
  [ -s "$work/demo.png" ] || { echo "FAIL: uce-atlas saved no screenshot of the demo" >&2; exit 1; }
  echo "demo opened, screenshot $(stat -c %s "$work/demo.png") bytes"
fi
cd /
rm -rf "$work"

step "apt-get purge uce-atlas"
$SUDO apt-get purge -y -q uce-atlas
installed=0
left=""
for p in /usr/bin/uce /usr/bin/uce-atlas /usr/share/uce-atlas /usr/share/applications/uce-atlas.desktop \
         /usr/share/mime/packages/uce-atlas.xml /usr/share/icons/hicolor/scalable/apps/uce-atlas.svg; do
  if [ -e "$p" ]; then left="$left $p"; fi
done
if dpkg-query -W -f='${Status}' uce-atlas 2>/dev/null | grep -q installed; then left="$left (dpkg still lists uce-atlas)"; fi
if [ -f /usr/share/mime/globs2 ] && grep -q 'application/x-h5ad' /usr/share/mime/globs2; then
  left="$left (MIME type still registered)"
fi
if [ -n "$left" ]; then
  echo "FAIL: removal left:$left" >&2
  exit 1
fi
echo "smoke test OK: installed, ran and removed cleanly"
