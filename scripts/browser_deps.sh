#!/usr/bin/env bash
# Install headless Chromium and its driver for the browser tests, if missing and if we can.
# `make test` calls this; without a browser the browser tests fail loudly (they never skip).
set -u
command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || true
fi
command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 \
  || echo "browser_deps: chromium/chromedriver not available; browser tests will fail" >&2
