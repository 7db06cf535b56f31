#!/usr/bin/env bash
# Rebuilds examples/demo-dist/, the bundled demo input of README's first command, from our own sources:
#   app/libkern.so            our CUDA 13.0 library (a copy of tests/fixtures/cuda13/libkern.so)
#   app/libcuda.so.1          a stand-in shaped like ZLUDA's drop-in driver: named like NVIDIA's libcuda, it
#                             imports AMD's HIP runtime (docs/layers.md: ptx-jit-on-nonnvidia) -- a few lines of our C
#   app/libamdhip64.so.6      the HIP stub it links against
#   licscan_test-0.0.1-...whl our fixture wheel (libkern.so inside a wheel)
# Needs gcc. Run from anywhere: bash examples/build_demo.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
fixtures="$here/../tests/fixtures/cuda13"
out="$here/demo-dist"
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
rm -rf "$out"
mkdir -p "$out/app"
cat > "$build/hip.c" <<'C'
int hipInit(unsigned int flags) { return (int)flags; }
C
cat > "$build/cuda.c" <<'C'
extern int hipInit(unsigned int flags);
int cuInit(unsigned int flags) { return hipInit(flags); }
C
(cd "$build" && gcc -O2 -shared -fPIC -o libamdhip64.so.6 -Wl,-soname,libamdhip64.so.6 hip.c \
  && gcc -O2 -shared -fPIC -o libcuda.so.1 -Wl,-soname,libcuda.so.1 cuda.c -L. -l:libamdhip64.so.6 \
  && strip libamdhip64.so.6 libcuda.so.1)
cp "$build/libamdhip64.so.6" "$build/libcuda.so.1" "$out/app/"
cp "$fixtures/libkern.so" "$out/app/"
cp "$fixtures/licscan_test-0.0.1-py3-none-linux_x86_64.whl" "$out/"
ls -l "$out" "$out/app"
