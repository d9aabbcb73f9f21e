#!/usr/bin/env bash
# The package smoke test that ctest runs (installer_test_package):
#   check-package.sh BUILD_DIR SHARED_DIR [CPACK]
# builds the .deb from BUILD_DIR into a temporary folder, unpacks it with dpkg-deb -x (nothing
# is installed into the system) and checks what a user would get: the files (binaries, desktop
# entry, icon, MIME type, data), the declared Depends, and that the unpacked programs run with
# LD_LIBRARY_PATH unset and find their data beside themselves rather than in the build tree.
# installer/smoke-test.sh is the real thing (apt-get install, run, apt-get remove) for CI.
set -euo pipefail

build=$(cd "${1:?usage: check-package.sh BUILD_DIR SHARED_DIR [CPACK]}" && pwd)
shared=${2:?usage: check-package.sh BUILD_DIR SHARED_DIR [CPACK]}
cpack=${3:-cpack}
pbmc=$shared/data/pbmc_small.h5ad

tmp=$(mktemp -d "${TMPDIR:-/tmp}/uce-package.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
# Prints "ok: ..." when no check failed since the last mark.
mark() { marked=$failures; }
section_ok() { if [ "$failures" = "$marked" ]; then ok "$@"; fi; mark; }
mark
cache() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }

gui=$(cache UCE_BUILD_GUI)
demo=$(cache UCE_BUILD_DEMO)
version=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")$/\1/p' "$build/CPackConfig.cmake")

# --- build and unpack ------------------------------------------------------------------------
start=$(date +%s%N)
if ! "$cpack" -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/out" >"$tmp/cpack.log" 2>&1; then
  cat "$tmp/cpack.log" >&2
  echo "FAIL: cpack could not build the package" >&2
  exit 1
fi
ms=$((($(date +%s%N) - start) / 1000000))
seconds=$((ms / 1000)).$(printf %03d $((ms % 1000)))
deb=$(ls "$tmp"/out/uce-atlas_*.deb)
case $(basename "$deb") in
  "uce-atlas_${version}_amd64.deb") ok "built $(basename "$deb") ($(du -h "$deb" | cut -f1)) in ${seconds} s" ;;
  *) fail "package file is $(basename "$deb"), expected uce-atlas_${version}_amd64.deb" ;;
esac
root=$tmp/root
dpkg-deb -x "$deb" "$root"

# --- files -------------------------------------------------------------------------------------
want=(usr/bin/uce usr/share/uce-atlas/human_gene_positions.csv)
if [ "$gui" = ON ]; then
  want+=(usr/bin/uce-atlas usr/share/applications/uce-atlas.desktop
         usr/share/icons/hicolor/scalable/apps/uce-atlas.svg
         usr/share/icons/hicolor/48x48/apps/uce-atlas.png
         usr/share/icons/hicolor/256x256/apps/uce-atlas.png
         usr/share/mime/packages/uce-atlas.xml)
fi
if [ "$demo" = ON ]; then
  want+=(usr/share/uce-atlas/demo/human_kidney.h5ad usr/share/uce-atlas/demo/assets/all_tokens.torch)
fi
for f in "${want[@]}"; do
  [ -s "$root/$f" ] || fail "the package lacks /$f"
done
stray=$(cd "$root" && find . -type f ! -path './usr/bin/*' ! -path './usr/share/*')
[ -z "$stray" ] || fail "files outside /usr/bin and /usr/share: $stray"
[ ! -e "$root/usr/share/uce-atlas/demo/demo.stamp" ] || fail "the build's demo.stamp is packaged"
section_ok "file list ($(cd "$root" && find . -type f | wc -l) files)"

if [ "$gui" = ON ]; then
  desktop=$root/usr/share/applications/uce-atlas.desktop
  grep -qx 'Exec=uce-atlas %F' "$desktop" || fail ".desktop Exec is not 'uce-atlas %F'"
  grep -qx 'Icon=uce-atlas' "$desktop" || fail ".desktop Icon is not uce-atlas"
  grep -q '^MimeType=.*application/x-h5ad;' "$desktop" || fail ".desktop does not list application/x-h5ad"
  grep -q 'glob pattern="\*.h5ad"' "$root/usr/share/mime/packages/uce-atlas.xml" ||
    fail "the MIME package has no *.h5ad glob"
  section_ok "desktop entry and MIME type"
fi

# No binary may look for libraries in the build tree.
for b in "$root"/usr/bin/*; do
  if readelf -d "$b" | grep -E 'RPATH|RUNPATH' | grep -q "$build"; then
    fail "$(basename "$b") has a RUNPATH into the build tree"
  fi
done

# --- control data ----------------------------------------------------------------------------
info=$(dpkg-deb -I "$deb")
depends=$(echo "$info" | sed -n 's/^ Depends: //p')
[ -n "$depends" ] || fail "the package declares no Depends"
need=(libtorch libhdf5 libc6)
if [ "$gui" = ON ]; then need+=(libqt6widgets6 libqt6opengl6 libvtk9 qt6-qpa-plugins); fi
for p in "${need[@]}"; do
  echo "$depends" | grep -q "$p" || fail "Depends lacks $p: $depends"
done
if echo "$depends" | grep -q python; then fail "Depends mentions Python: $depends"; fi
echo "$info" | grep -q "^ Package: uce-atlas$" || fail "package name is not uce-atlas"
echo "$info" | grep -q "^ Version: ${version}$" || fail "package version is not ${version}"
echo "$info" | grep -q "^ Maintainer: ." || fail "the package has no Maintainer"
section_ok "Depends: $depends"

# --- run the unpacked programs -----------------------------------------------------------------
run() { env -u LD_LIBRARY_PATH "$@"; }
uce=$root/usr/bin/uce
out=$(run "$uce" --version) || fail "uce --version exited non-zero"
[ "$out" = "uce $version" ] || fail "uce --version printed '$out', expected 'uce $version'"
if [ -f "$pbmc" ]; then
  out=$(run "$uce" info "$pbmc") || fail "uce info $pbmc exited non-zero"
  echo "$out" | grep -q '^cells: *80$' || fail "uce info does not report the 80 PBMC cells: $out"
  echo "$out" | grep -q '^genes: *230$' || fail "uce info does not report the 230 PBMC genes: $out"
  section_ok "uce info $(basename "$pbmc")"
else
  fail "the PBMC file $pbmc is missing (UCE_SHARED_DIR)"
fi
# uce synth's default gene table must be the packaged one: corrupt it and the error names it.
run "$uce" synth --out "$tmp/synth" --single-dataset --cells 100 --genes 300 --no-assets --quiet >/dev/null ||
  fail "uce synth with the packaged gene table failed"
table=$root/usr/share/uce-atlas/human_gene_positions.csv
echo "not,a,gene,table" >"$table"
if err=$(run "$uce" synth --out "$tmp/synth2" --single-dataset --cells 100 --genes 300 --no-assets --quiet 2>&1); then
  fail "uce synth accepted a corrupt packaged gene table: it does not read the packaged file"
else
  echo "$err" | grep -qF "$table" || fail "uce synth does not read the packaged gene table: $err"
fi
section_ok "uce runs from the package and reads /usr/share/uce-atlas"

if [ "$gui" = ON ]; then
  app=$root/usr/bin/uce-atlas
  missing=$(run ldd "$app" | grep 'not found' || true)
  [ -z "$missing" ] || fail "uce-atlas lacks libraries: $missing"
  out=$(run env QT_QPA_PLATFORM=offscreen "$app" --version 2>&1) || fail "uce-atlas --version exited non-zero: $out"
  echo "$out" | grep -qF "$version" || fail "uce-atlas --version printed '$out'"
  if run env QT_QPA_PLATFORM=offscreen "$app" --help 2>&1 | grep -q -- '--self-test'; then
    if command -v xvfb-run >/dev/null; then
      out=$(run xvfb-run -a -s "-screen 0 1600x1000x24" env QT_QPA_PLATFORM=xcb "$app" --self-test 2>&1) ||
        fail "uce-atlas --self-test failed: $out"
    fi
  fi
  section_ok "uce-atlas starts ($(echo "$out" | tail -n 1))"

  # The unpacked app opens the packaged demo atlas (bin/../share/uce-atlas/demo), not the build
  # tree's: with only human_kidney left in the package's copy, asking for human_heart must fail.
  if [ "$demo" = ON ] && command -v xvfb-run >/dev/null; then
    find "$root/usr/share/uce-atlas/demo" -maxdepth 1 -name '*.h5ad' ! -name human_kidney.h5ad -delete
    shots=$build/test-screenshots
    mkdir -p "$shots" "$tmp/home"
    gui_run() {
      run env HOME="$tmp/home" XDG_CACHE_HOME="$tmp/home/cache" UCE_SETTINGS_FILE="$tmp/home/settings.ini" \
        UCE_DEMO_DIR= xvfb-run -a -s "-screen 0 1600x1000x24" env QT_QPA_PLATFORM=xcb "$app" "$@" 2>&1
    }
    out=$(gui_run --demo-dataset human_kidney --screenshot "$shots/installer_package_demo.png") ||
      fail "the unpacked uce-atlas could not open the packaged demo: $out"
    [ -s "$shots/installer_package_demo.png" ] || fail "uce-atlas saved no screenshot of the demo"
    if out=$(gui_run --demo-dataset human_heart --screenshot "$tmp/heart.png"); then
      fail "uce-atlas opened human_heart, which the packaged demo no longer has: it reads the build tree's demo"
    elif ! echo "$out" | grep -q "no dataset 'human_heart'"; then
      fail "uce-atlas --demo-dataset human_heart failed for another reason than the missing dataset: $out"
    fi
    section_ok "uce-atlas opens the packaged demo atlas (test-screenshots/installer_package_demo.png)"
  fi
fi

if [ "$failures" -gt 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "package OK"
