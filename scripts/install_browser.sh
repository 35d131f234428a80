#!/usr/bin/env bash
# Install what the real-browser test (tests/test_browser.py) needs: Debian's Chromium and PyPI's playwright.
#
#   scripts/install_browser.sh [PYTHON]     (make test calls it; safe to run again)
#
# Never downloads a browser build of its own (`playwright install` is not used): the test drives the
# system Chromium through executable_path. Where Chromium cannot be installed (not root, no apt-get,
# macOS, Windows) it says so and exits 0: the browser test then skips with a message saying how to
# enable it (install chromium yourself, or set COURSE_CHROMIUM=/path/to/chromium).
set -uo pipefail

PY="${1:-.venv/bin/python}"

# 1. playwright (the Python driver only; pinned range lives in pyproject.toml's dev extra).
if ! "$PY" -c 'import playwright' 2>/dev/null; then
    "$PY" -m pip install --quiet "playwright>=1.64,<2" \
        || echo "install_browser: could not pip install playwright; the browser tests will be skipped"
fi

# 2. Chromium from the system package manager.
if [ -n "${COURSE_CHROMIUM:-}" ]; then
    echo "install_browser: using COURSE_CHROMIUM=$COURSE_CHROMIUM"
    exit 0
fi
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(uname -s)" != "Linux" ] || ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != "0" ]; then
    echo "install_browser: Chromium not installed (needs root + apt-get on Debian/Ubuntu);" \
         "the browser test will be skipped. To enable it: install chromium, or set COURSE_CHROMIUM=/path/to/chromium."
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; then
    echo "install_browser: installed $(/usr/bin/chromium --version 2>/dev/null)"
else
    echo "install_browser: apt-get could not install chromium (no network? the offline kit holds no" \
         "Chromium: install it while the machine still has internet); the browser tests will be skipped"
fi
exit 0
