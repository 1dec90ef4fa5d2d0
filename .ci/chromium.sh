#!/usr/bin/env bash
# Headless Chromium and its Selenium driver for the report's browser tests (Debian packages;
# Playwright cannot download its own browser here). Installs them with apt-get when it can;
# when it cannot, says so in one line and exits 0: the browser tests then skip.
set -uo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: cannot install chromium here (needs root and apt-get); browser tests will be skipped"
  exit 0
fi
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
       apt-get install -y -qq chromium chromium-driver; } >/tmp/carbonfed-chromium.log 2>&1; then
  echo "note: apt-get could not install chromium (see /tmp/carbonfed-chromium.log); browser tests will be skipped"
fi
exit 0
