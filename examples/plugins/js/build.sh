#!/usr/bin/env bash
# Builds the JavaScript greeter plugin into a component of the `plugin`
# world (wit/behaviour.wit), installing componentize-js first if it is
# missing.
#
#   examples/plugins/js/build.sh [OUT.wasm]
#
# OUT defaults to target/wasm32-wasip2/release/tenure_plugin_greeter_js.wasm
# (honouring CARGO_TARGET_DIR), beside the Rust example plugins.
#
# componentize-js comes from the npm registry, exactly as package-lock.json
# pins it (`npm ci`), into ${TENURE_TOOLS_DIR:-~/.cache/tenure}, outside the
# repository, so a second build reuses it. It needs nothing else at install
# or build time: the SpiderMonkey engine ships inside the npm package and
# wizer as a per-platform npm package. (Only `--aot` would fetch a weval
# binary from outside the registry; this build does not use it.) A build
# whose inputs (the source, wit/, the lock file) have not changed since
# the last one is skipped.
set -euo pipefail

# componentize-js 0.23.0 makes components (wasi 0.2.12 imports, satisfied
# by wasmtime 48's 0.2 interfaces) that the host links and runs. The
# version is pinned in package.json and, with every dependency, in
# package-lock.json; tests/polyglot.rs checks a node loads the result.
COMPONENTIZE_JS_VERSION=0.23.0

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$repo/$target" ;; esac
out="${1:-$target/wasm32-wasip2/release/tenure_plugin_greeter_js.wasm}"
tools="${TENURE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tenure}"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "error: node and npm not found; componentize-js needs Node.js 18 or newer" >&2
    exit 1
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 18 ]; then
    echo "error: Node.js $(node --version) is too old; componentize-js needs 18 or newer" >&2
    exit 1
fi

# The install is named by what it installs: the lock's packages, not the
# project's own name, so every project pinning the same versions (the
# examples, each `tenure new-plugin --lang js` project) shares one.
lock_hash="$(node -e '
const lock = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const packages = { ...lock.packages };
delete packages[""];
const hash = require("crypto").createHash("sha256").update(JSON.stringify(packages));
process.stdout.write(hash.digest("hex").slice(0, 12));
' "$here/package-lock.json")"
prefix="$tools/componentize-js-$COMPONENTIZE_JS_VERSION-$lock_hash"
tool="$prefix/node_modules/.bin/componentize-js"

# An install is only trusted once it finished (the marker is written
# last), so an interrupted one is redone, not half-used.
if [ ! -f "$prefix/.installed" ]; then
    echo "Installing componentize-js $COMPONENTIZE_JS_VERSION into $prefix ..."
    rm -rf "$prefix"
    mkdir -p "$prefix"
    cp "$here/package.json" "$here/package-lock.json" "$prefix/"
    # `npm install` with the lock file in place takes every version from
    # it. (Not `npm ci`: npm leaves other platforms' optional packages out
    # of the lock it writes, then `npm ci` calls the lock out of sync.)
    # No dependency has an install script; --ignore-scripts keeps it so.
    (cd "$prefix" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error)
    installed="$(node -p "require('$prefix/node_modules/@bytecodealliance/componentize-js/package.json').version")"
    if [ "$installed" != "$COMPONENTIZE_JS_VERSION" ]; then
        echo "error: package-lock.json installs componentize-js $installed, expected $COMPONENTIZE_JS_VERSION" >&2
        exit 1
    fi
    touch "$prefix/.installed"
fi

# The greeter's unit tests first, natively (WIT import stubbed; a second).
if ! (cd "$here" && node --test greeter.test.mjs >/tmp/tenure-greeter-js-tests.$$ 2>&1); then
    cat /tmp/tenure-greeter-js-tests.$$ >&2
    rm -f /tmp/tenure-greeter-js-tests.$$
    echo "error: the JavaScript greeter's unit tests failed" >&2
    exit 1
fi
rm -f /tmp/tenure-greeter-js-tests.$$

# Everything the component is made from, hashed, to skip an unneeded build.
inputs="$( (cd "$repo" && find wit -name '*.wit' | LC_ALL=C sort | xargs cat; cat examples/plugins/js/greeter.js examples/plugins/js/greeter_core.js examples/plugins/js/package-lock.json) | sha256sum | cut -d' ' -f1)"
stamp="$out.inputs"
if [ -f "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ]; then
    echo "Up to date: $out ($(wc -c < "$out") bytes)"
    exit 0
fi

mkdir -p "$(dirname "$out")"
started=$(date +%s%N)
# With the engine's `http` feature, fetch() goes out through the
# wasi:http/outgoing-handler the plugin world imports; `fetch-event` (an
# exported incoming-handler) the world has not. greeter.js imports
# ./greeter_core.js, which componentize-js bundles. Written beside the
# output, then renamed: a node watching the file never loads a
# half-written component.
"$tool" "$here/greeter.js" --wit "$repo/wit" --world-name plugin \
    --disable fetch-event --out "$out.tmp"
if [ ! -s "$out.tmp" ]; then
    echo "error: componentize-js wrote no component" >&2
    exit 1
fi
mv "$out.tmp" "$out"
echo "$inputs" > "$stamp"
took_ms=$((($(date +%s%N) - started) / 1000000))
echo "Built $out ($(wc -c < "$out") bytes) in $((took_ms / 1000)).$((took_ms % 1000 / 100)) s" \
    "with componentize-js $COMPONENTIZE_JS_VERSION"
