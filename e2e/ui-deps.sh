#!/usr/bin/env bash
# The web UI's browser test (tests/e2e_ui.rs) drives Debian's Chromium headless through
# WebDriver (chromedriver). This installs both if missing (idempotent: one apt-get run under the
# machine-wide apt lock, nothing when present) and prints chromedriver's path.
# Run by scripts/test.sh before the e2e tests; safe to run by hand.
. "$(dirname "$0")/lib.sh"
need chromium /usr/bin/chromium
need chromium-driver /usr/bin/chromedriver
need fonts-dejavu-core /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
install_needed
echo /usr/bin/chromedriver
