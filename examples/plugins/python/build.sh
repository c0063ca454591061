#!/usr/bin/env bash
# Builds the Python greeter plugin into a component of the `plugin` world
# (wit/behaviour.wit), installing componentize-py first if it is missing.
#
#   examples/plugins/python/build.sh [OUT.wasm]
#
# OUT defaults to target/wasm32-wasip2/release/tenure_plugin_greeter_python.wasm
# (honouring CARGO_TARGET_DIR), beside the Rust example plugins.
#
# componentize-py comes from PyPI into a virtualenv under
# ${TENURE_TOOLS_DIR:-~/.cache/tenure}, outside the repository, so a second
# build reuses it. A build whose inputs (the sources, wit/, the tool
# version) have not changed since the last one is skipped.
set -euo pipefail

# componentize-py 0.25.1 makes components (wasi 0.2.9 imports) that the
# host's wasmtime 48 links and runs. Change it only after checking that a
# node still loads the result (tests/polyglot.rs does).
COMPONENTIZE_PY_VERSION=0.25.1

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$repo/$target" ;; esac
out="${1:-$target/wasm32-wasip2/release/tenure_plugin_greeter_python.wasm}"
tools="${TENURE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tenure}"
venv="$tools/componentize-py-$COMPONENTIZE_PY_VERSION"
tool="$venv/bin/componentize-py"

# A virtualenv is only trusted once its install finished (the marker is
# written last), so an interrupted install is redone, not half-used.
if [ ! -f "$venv/.installed" ]; then
    if ! command -v python3 >/dev/null 2>&1; then
        echo "error: python3 not found; componentize-py needs Python 3.8 or newer with venv and pip" >&2
        exit 1
    fi
    echo "Installing componentize-py $COMPONENTIZE_PY_VERSION into $venv ..."
    rm -rf "$venv"
    mkdir -p "$tools"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "componentize-py==$COMPONENTIZE_PY_VERSION"
    touch "$venv/.installed"
fi

# The logic's unit tests first (natively, well under a second).
if ! (cd "$here" && PYTHONDONTWRITEBYTECODE=1 python3 -m unittest -q test_greeter_core 2>/tmp/tenure-greeter-python-tests.$$); then
    cat /tmp/tenure-greeter-python-tests.$$ >&2
    rm -f /tmp/tenure-greeter-python-tests.$$
    echo "error: the Python greeter's unit tests failed" >&2
    exit 1
fi
rm -f /tmp/tenure-greeter-python-tests.$$

# Everything the component is made from, hashed, to skip an unneeded build.
inputs="$( (cd "$repo" && find wit -name '*.wit' | LC_ALL=C sort | xargs cat; cat examples/plugins/python/app.py examples/plugins/python/greeter_core.py examples/plugins/python/tenure_http.py; echo "$COMPONENTIZE_PY_VERSION") | sha256sum | cut -d' ' -f1)"
stamp="$out.inputs"
if [ -f "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ]; then
    echo "Up to date: $out ($(wc -c < "$out") bytes)"
    exit 0
fi

mkdir -p "$(dirname "$out")"
started=$(date +%s%N)
# Write beside the output, then rename: a node watching the file never
# loads a half-written component.
(cd "$here" && "$tool" -d "$repo/wit" -w plugin componentize app -o "$out.tmp" >/dev/null)
mv "$out.tmp" "$out"
echo "$inputs" > "$stamp"
took_ms=$((($(date +%s%N) - started) / 1000000))
echo "Built $out ($(wc -c < "$out") bytes) in $((took_ms / 1000)).$((took_ms % 1000 / 100)) s" \
    "with componentize-py $COMPONENTIZE_PY_VERSION"
