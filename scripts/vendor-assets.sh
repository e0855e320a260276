#!/bin/sh
# Copies the browser libraries npm installed (package-lock.json) into a static folder that is never
# committed: xterm.js for the terminal, CodeMirror 5 for the editor tab (a plain script with the
# modes the editor names, no bundler). Used by `make assets` and the Dockerfile's assets stage.
#   scripts/vendor-assets.sh [node_modules] [target, default static/vendor]
set -eu
modules=${1:-node_modules}
target=${2:-static/vendor}
mkdir -p "$target/xterm" "$target/codemirror/mode"
cp "$modules/@xterm/xterm/lib/xterm.js" "$modules/@xterm/xterm/css/xterm.css" \
   "$modules/@xterm/addon-fit/lib/addon-fit.js" "$target/xterm/"
cp "$modules/codemirror/lib/codemirror.js" "$modules/codemirror/lib/codemirror.css" \
   "$modules/codemirror/addon/mode/simple.js" "$target/codemirror/"
for mode in dockerfile yaml shell python javascript; do
  cp "$modules/codemirror/mode/$mode/$mode.js" "$target/codemirror/mode/"
done
