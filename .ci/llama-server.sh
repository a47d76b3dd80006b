#!/usr/bin/env bash
# Build llama-server from the llama.cpp source vendored in the pinned PyPI sdist of llama-cpp-python,
# into a cache folder outside the clone that later runs reuse (tests/support/llama_server.py finds it
# there, or at $CODELLAMA_LS_LLAMA_SERVER). Layout: $CACHE/llama.cpp-$VERSION/{sdist,build/bin/llama-server}.
# Idempotent: a finished build (stamp file) is reused at once; a half-finished one is resumed by cmake's
# own dependency checks (never trusted: the stamp is written only after the binary answers --version).
# About 7 minutes on 2 cores from scratch. Needs cmake and g++ (installed from Debian when missing) and
# the venv's pip (the sdist comes from PyPI through pip).
set -euo pipefail

VERSION=0.3.36
CACHE=${CODELLAMA_LS_CI_CACHE:-$HOME/.cache/codellama-ls-ci}
C=$CACHE/llama.cpp-$VERSION
SRC=$C/sdist/vendor/llama.cpp
BIN=$C/build/bin/llama-server
STAMP=$C/build/.codellama-ls-built

if [ -f "$STAMP" ] && [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
    echo "llama-server $VERSION: $BIN (cached)"
    exit 0
fi

if ! command -v cmake >/dev/null || ! command -v g++ >/dev/null; then
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    $SUDO apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends cmake g++ make
fi

mkdir -p "$C"
if [ ! -f "$SRC/CMakeLists.txt" ] || [ ! -f "$SRC/convert_hf_to_gguf.py" ]; then
    # Downloaded and unpacked beside, moved into place only when complete.
    tmp=$(mktemp -d "$C/.sdist.XXXXXX")
    python -m pip download -q --no-binary :all: --no-deps "llama-cpp-python==$VERSION" -d "$tmp"
    tar xzf "$tmp/llama_cpp_python-$VERSION.tar.gz" -C "$tmp"
    rm -rf "$C/sdist" "$C/build"
    mv "$tmp/llama_cpp_python-$VERSION" "$C/sdist"
    rm -rf "$tmp"
fi

if [ ! -f "$C/build/Makefile" ]; then  # written last by a configure that completed
    cmake -S "$SRC" -B "$C/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_BUILD_SERVER=ON \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DGGML_NATIVE=OFF
fi
cmake --build "$C/build" --target llama-server -j"$(nproc)"
"$BIN" --version >/dev/null 2>&1
touch "$STAMP"
echo "llama-server $VERSION: $BIN"
