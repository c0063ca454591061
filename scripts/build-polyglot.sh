#!/usr/bin/env bash
# Builds the Python and JavaScript example plugins (examples/plugins/python,
# examples/plugins/js) into target/wasm32-wasip2/release/, installing
# componentize-py (PyPI) and componentize-js (npm) first if they are
# missing. Each build is skipped when its inputs have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."

examples/plugins/python/build.sh
examples/plugins/js/build.sh
