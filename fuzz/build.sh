#!/usr/bin/env bash
# Builds the libFuzzer harness (clang, ASan + UBSan) into ${1:-fuzz/build}.
# Usage: fuzz/build.sh [outdir]; then fuzz/run.sh (see fuzz/README.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/fuzz/build}"
mkdir -p "$out"
CXX="${CXX:-clang++}"
command -v "$CXX" >/dev/null || { echo "needs clang++ (apt-get install clang)" >&2; exit 1; }
"$CXX" -std=c++17 -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$root/csrc" \
    "$root/fuzz/decode_fuzzer.cpp" \
    "$root"/csrc/core/decode.cpp "$root"/csrc/core/decode_jpeg.cpp "$root"/csrc/core/decode_jpeg_eighth.cpp \
    "$root"/csrc/core/decode_png.cpp \
    "$root"/csrc/core/decode_gif.cpp "$root"/csrc/core/decode_bmp.cpp \
    -ljpeg -lpng -o "$out/decode_fuzzer"
echo "built $out/decode_fuzzer"
