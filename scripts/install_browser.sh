#!/usr/bin/env bash
# Install headless Chromium + ChromeDriver from Debian's packages for the browser test (tests/test_report_browser.py).
# Idempotent and non-interactive; skips when both binaries already exist. Needs root (or passwordless sudo).
set -euo pipefail

CHROMIUM=/usr/bin/chromium
CHROMEDRIVER=/usr/bin/chromedriver

if [[ -x "$CHROMIUM" && -x "$CHROMEDRIVER" ]]; then
    echo "install_browser: $CHROMIUM and $CHROMEDRIVER already present"
    exit 0
fi

SUDO=""
if [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo -n"
    else
        echo "install_browser: need root (or sudo) to apt-get install chromium chromium-driver" >&2
        exit 1
    fi
fi

# `env` so the setting survives sudo, which drops most of the environment.
APT="$SUDO env DEBIAN_FRONTEND=noninteractive apt-get"
$APT update -q
$APT install -y -q --no-install-recommends chromium chromium-driver

for bin in "$CHROMIUM" "$CHROMEDRIVER"; do
    if [[ ! -x "$bin" ]]; then
        echo "install_browser: $bin missing after install" >&2
        exit 1
    fi
done
"$CHROMIUM" --version
"$CHROMEDRIVER" --version
