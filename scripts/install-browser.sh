#!/usr/bin/env bash
# Installs what the browser test (tests/browser.rs) needs, if missing:
#
# - Chromium, the Debian `chromium` package, with apt-get (only as root;
#   otherwise it says why it cannot). Playwright never downloads a browser
#   here: the test drives this system Chromium.
# - playwright-core from the npm registry, exactly as
#   tests/browser/package-lock.json pins it, into
#   ${TENURE_TOOLS_DIR:-~/.cache/tenure}/browser-test-LOCKHASH, outside the
#   repository (the way examples/plugins/js/build.sh installs
#   componentize-js). playwright-core has no dependencies and no install
#   script; --ignore-scripts keeps it so.
#
#   scripts/install-browser.sh    # exit 0: ready; 3: cannot (reason printed)
#
# scripts/test.sh calls it before `cargo test`, and tells the test to fail
# rather than skip once it said ready.
set -euo pipefail

PLAYWRIGHT_CORE_VERSION=1.55.1

repo="$(cd "$(dirname "$0")/.." && pwd)"
here="$repo/tests/browser"
tools="${TENURE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tenure}"
lock_hash="$(sha256sum "$here/package-lock.json" | cut -c1-12)"
prefix="$tools/browser-test-$lock_hash"
chromium="${TENURE_CHROMIUM:-/usr/bin/chromium}"

cannot() {
    echo "install-browser: cannot prepare the browser test: $*" >&2
    echo "install-browser: tests/browser.rs will skip, saying so" >&2
    exit 3
}

if [ ! -x "$chromium" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        cannot "$chromium is missing and installing the Debian chromium package needs root (sudo apt-get install chromium)"
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        cannot "$chromium is missing and there is no apt-get to install it with"
    fi
    echo "Installing the Debian chromium package (a few minutes the first time) ..."
    export DEBIAN_FRONTEND=noninteractive
    # A fresh image may have no package lists, or stale ones whose files
    # the mirror no longer has: update first, and try once more on a
    # transient mirror failure. A font too, or a screenshot shows boxes.
    installed=no
    for attempt in 1 2; do
        if apt-get update -qq &&
            apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; then
            installed=yes
            break
        fi
        echo "install-browser: apt-get failed (attempt $attempt)" >&2
        sleep 5
    done
    if [ "$installed" != yes ] || [ ! -x "$chromium" ]; then
        cannot "apt-get could not install chromium"
    fi
fi
echo "Chromium: $("$chromium" --version 2>/dev/null || echo "$chromium")"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    cannot "node and npm not found (playwright-core needs Node.js 18 or newer)"
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 18 ]; then
    cannot "Node.js $(node --version) is too old; playwright-core needs 18 or newer"
fi

# An install is only trusted once it finished (the marker is written
# last), so an interrupted one is redone, not half-used.
if [ ! -f "$prefix/.installed" ]; then
    echo "Installing playwright-core $PLAYWRIGHT_CORE_VERSION into $prefix ..."
    rm -rf "$prefix"
    mkdir -p "$prefix"
    cp "$here/package.json" "$here/package-lock.json" "$prefix/"
    if ! (cd "$prefix" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error); then
        rm -rf "$prefix"
        cannot "npm could not install playwright-core"
    fi
    installed="$(node -p "require('$prefix/node_modules/playwright-core/package.json').version")"
    if [ "$installed" != "$PLAYWRIGHT_CORE_VERSION" ]; then
        echo "error: package-lock.json installs playwright-core $installed, expected $PLAYWRIGHT_CORE_VERSION" >&2
        exit 1
    fi
    touch "$prefix/.installed"
fi
echo "playwright-core $PLAYWRIGHT_CORE_VERSION: $prefix"
