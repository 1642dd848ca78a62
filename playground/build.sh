#!/usr/bin/env bash
# Builds the playground into playground/dist/: upkeep-wasm for
# wasm32-unknown-unknown (release), its JS glue (upkeep-wasm-bindgen, the
# wasm-bindgen version of Cargo.lock), and the page bundled with esbuild.
#   bash playground/build.sh && python3 -m http.server -d playground/dist
# Cargo builds go to target/playground, so a build running beside another
# cargo command in the workspace does not wait for its lock.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

export CARGO_TARGET_DIR="${UPKEEP_PLAYGROUND_TARGET_DIR:-$root/target/playground}"
out="$here/dist"
pkg="$here/pkg"

if ! rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
  echo "build.sh: the wasm32-unknown-unknown target is missing (rustup target add wasm32-unknown-unknown, or bash .ci/setup)" >&2
  exit 1
fi
if [ ! -x "$here/node_modules/.bin/esbuild" ]; then
  echo "build.sh: npm packages missing (cd playground && npm ci, or bash .ci/setup)" >&2
  exit 1
fi

echo "build.sh: upkeep-wasm (wasm32, release)"
cargo build --quiet --release --locked -p upkeep-wasm --target wasm32-unknown-unknown
echo "build.sh: JS glue"
cargo build --quiet --locked -p upkeep-wasm-bindgen
rm -rf "$pkg"
"$CARGO_TARGET_DIR/debug/upkeep-wasm-bindgen" \
  "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/upkeep_wasm.wasm" "$pkg"

echo "build.sh: bundle"
rm -rf "$out"
mkdir -p "$out"
cd "$here"
node_modules/.bin/esbuild src/main.js src/worker.js --bundle --format=esm --minify \
  --loader:.conf=text --loader:.types=text --outdir="$out" --log-level=warning
cp index.html "$out/index.html"
cp src/main.css "$out/main.css"
cp "$pkg/upkeep_wasm_bg.wasm" "$out/upkeep_wasm_bg.wasm"
echo "build.sh: done: $out ($(du -sh "$out" | cut -f1)); serve with: python3 -m http.server -d playground/dist"
