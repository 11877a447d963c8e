#!/usr/bin/env bash
# Set up everything the tests need, so no test installs anything:
#   - .venv (created when missing) with recstream and its test extras installed in it;
#   - Chromium for the browser test (tests/streams/serving/test_dashboard.py): Debian's
#     `chromium` from apt-get when no chromium/chromium-browser is on PATH (and
#     RECSTREAM_CHROMIUM names none) and we are root with apt-get.
#     Otherwise the browser test is skipped with the reason (and fails when CI is set).
# Then: .venv/bin/python -m pytest   (the README's test command runs both).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q -e '.[test]'

if [ -n "${RECSTREAM_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1 \
    || command -v chromium-browser >/dev/null 2>&1; then
    :  # the browser test finds it
elif [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup_tests: no Chromium on PATH; installing Debian's chromium with apt-get for the browser test"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
    echo "setup_tests: no Chromium on PATH and not root with apt-get: the browser test will be skipped (it fails when CI is set)"
fi
