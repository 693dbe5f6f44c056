#!/usr/bin/env bash
# Debian's Chromium for the end-to-end tests (Playwright drives it; it never downloads a browser).
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
fi
