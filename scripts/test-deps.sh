#!/usr/bin/env bash
# Test dependencies pip cannot install: a headless Chromium for tests/reporting/test_report_browser.py
# (Debian's `chromium`, about 155 MB of packages, half a minute here). Where there is no
# apt-get, or we are not root, it says so and exits 0: those tests then skip with their reason.
# ELUBENCH_CI_BROWSER=0 leaves the browser alone.
set -uo pipefail

say() { echo "test-deps: $*"; }
for name in chromium chromium-browser google-chrome google-chrome-stable; do
  if command -v "$name" >/dev/null 2>&1; then
    say "$name is installed"; exit 0
  fi
done
if [ "${ELUBENCH_CI_BROWSER:-1}" = 0 ]; then
  say "ELUBENCH_CI_BROWSER=0: no Chromium; the browser tests will skip"; exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  say "no apt-get here: no Chromium; the browser tests will skip"; exit 0
fi
if [ "$(id -u)" != 0 ]; then
  say "not root: no Chromium installed; the browser tests will skip (install chromium to run them)"; exit 0
fi
started=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
if apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; then
  say "chromium installed in $(( $(date +%s) - started ))s: $(chromium --version 2>/dev/null)"
else
  say "installing chromium failed after $(( $(date +%s) - started ))s; the browser tests will skip"
fi
exit 0
