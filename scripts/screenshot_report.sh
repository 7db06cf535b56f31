#!/usr/bin/env bash
# Render a licscan HTML report in headless Chromium (Debian package `chromium`) and save a PNG screenshot.
#   scripts/screenshot_report.sh REPORT.html [OUT.png] [WIDTHxHEIGHT]
# Exit status: chromium's; 2 when chromium or the report is missing. The browser runs offline in a throw-away
# profile: no network, no sync, no component updates; the report itself loads nothing (CSP default-src 'none').
set -euo pipefail
report=${1:?usage: $0 REPORT.html [OUT.png] [WIDTHxHEIGHT]}
out=${2:-report.png}
size=${3:-1400x2000}
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
    echo "screenshot_report: chromium not found (Debian: apt-get install -y chromium)" >&2
    exit 2
fi
if [ ! -f "$report" ]; then
    echo "screenshot_report: $report: no such file" >&2
    exit 2
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
abs_report=$(cd "$(dirname "$report")" && pwd)/$(basename "$report")
abs_out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$profile" \
    --screenshot="$abs_out" --window-size="${size/x/,}" "file://$abs_report" 2>"$profile/chromium.log" || {
    status=$?; cat "$profile/chromium.log" >&2; exit "$status"; }
[ -s "$abs_out" ] || { cat "$profile/chromium.log" >&2; echo "screenshot_report: no screenshot written" >&2; exit 1; }
echo "$abs_out"
