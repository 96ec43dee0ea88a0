#!/usr/bin/env bash
# Prove the package works as users get it: build the wheel, install it with the pinned set into a
# fresh venv, and run the documented commands from an empty folder outside the clone. Checks that
# outputs land in that folder and nothing is written under site-packages.  Usage: scripts/check_installed.sh
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PY:-$(command -v python3.12 || command -v python3)}"
PIP_PY="${PIP_PY:-$REPO/.venv/bin/python}"   # builds the wheel (setuptools from the project venv)
T0=$(date +%s)
TMP="$(mktemp -d /tmp/nkdefections-installed.XXXXXX)"
EXPLORE_PID=""
trap '[ -n "$EXPLORE_PID" ] && kill "$EXPLORE_PID" 2>/dev/null; rm -rf "$TMP"' EXIT
"$PIP_PY" -m pip wheel -q --no-deps --no-build-isolation -w "$TMP/dist" "$REPO"
"$PY" -m venv "$TMP/venv"
V="$TMP/venv/bin"
"$V/python" -m pip install -q -r "$REPO/requirements.lock"
"$V/python" -m pip install -q --no-deps "$TMP"/dist/nkdefections-*.whl
SITE="$("$V/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
touch "$TMP/stamp"
mkdir "$TMP/work" "$TMP/my_configs" "$TMP/my_configs/scenario"
cd "$TMP/work"
export NKDEFECTIONS_CACHE_DIR="$TMP/work/.cache" PYTENSOR_FLAGS="base_compiledir=$TMP/work/.cache/pytensor"
unset PYTHONPATH NKDEFECTIONS_CONFIG_DIR NKDEFECTIONS_DATA_DIR
SMALL=(sampler.draws=100 sampler.tune=100 sampler.chains=2 gate=relaxed)
"$V/python" -c 'import nkdefections, sys; p = nkdefections.__file__; sys.exit(0 if "site-packages" in p else p)'
for cmd in nkdefections nkdefections-evidence nkdefections-nowcast nkdefections-data nkdefections-score nkdefections-explore; do "$V/$cmd" --help >/dev/null; done
"$V/nkdefections-data" manifest
"$V/nkdefections" "${SMALL[@]}" output_dir=run1
test -f run1/run.json && test -f run1/forecast_summary.csv
# score run1's forecasts against synthetic figures drawn from the forecast itself (no real post-2016 figure)
"$V/python" - <<'PY'
import pandas as pd, xarray as xr
with xr.open_dataset("run1/forecast.nc") as fc:
    y = fc["arrivals"].sel(scenario="status_quo", year_future=[2017, 2018]).stack(s=("chain", "draw")).isel(s=0)
    pd.DataFrame({"year": [2017, 2018], "arrivals": y.values}).to_csv("synthetic.csv", index=False)
PY
"$V/nkdefections-score" run1 synthetic.csv --out score1 > score.txt
test -f score1/scores.csv && test -f score1/scorecard.md && test -f score1/score_fan.png && grep -q "^scored" score.txt
printf 'year,arrivals\n2040,5\n' > bad.csv
rc=0; "$V/nkdefections-score" run1 bad.csv --out score2 2> score_err.txt || rc=$?
test "$rc" = 2 && grep -q "bad.csv: line 2" score_err.txt && test ! -e score2
# the report leads with the headline (scenario table, overlay chart, caveats)
grep -q '<div class="headline">' run1/report.html && test -f run1/scenarios.png
cat > "$TMP/my_configs/scenario/my_thaw.yaml" <<'YAML'
name: my_thaw
description: border partly reopened from 2018
drivers:
  border: {type: step, year: 2018, value: 0.5}
YAML
"$V/nkdefections" --config-dir "$TMP/my_configs" "scenarios=[my_thaw,status_quo]" "${SMALL[@]}" output_dir=run2
grep -q my_thaw run2/forecast_summary.csv
# live mode: the user's own files past 2016 (a synthetic extension written by the tests' helper, which
# imports only numpy; no real post-2016 figure), fitted and forecast from the year after the window
LIVE="$("$V/python" - "$REPO/tests/helpers" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from live_data import write_live_files
print(" ".join(f"data.files.{k}={v}" for k, v in write_live_files("mine", 2020).items()))
PY
)"
# shellcheck disable=SC2086  # LIVE is a list of key=value overrides
"$V/nkdefections" data=live data.last_year=2020 $LIVE "${SMALL[@]}" output_dir=live1
grep -q '"horizon": "2021-2030"' live1/run.json && grep -q "fitted to 1999-2020" live1/report.md
grep -q "Live fit on 1999-2020" live1/report.md
rc=0; "$V/nkdefections" data=live data.last_year=2021 $LIVE "${SMALL[@]}" output_dir=live2 2> live_err.txt || rc=$?
test "$rc" = 2 && grep -q "mine/arrivals.csv" live_err.txt && grep -q "(1999-2020)" live_err.txt && test ! -e live2
"$V/nkdefections-nowcast" --year 2016 --month-end 6 --count 749 > nowcast.txt
grep -q "nowcast of 2016" nowcast.txt
# the README's Python example, at small sampler settings
sed -n '/<!-- example:start -->/,/<!-- example:end -->/p' "$REPO/README.md" | sed '1,2d;$d' | sed '$d' \
  | sed 's/SamplerConfig(seed=20161231)/SamplerConfig(seed=20161231, draws=100, tune=100, chains=2)/; s/GateConfig()/GateConfig(enforce=False)/' \
  > example.py
"$V/python" example.py >/dev/null
test -f fit.nc
# the explorer from the wheel: its page, its scripts (plotly's bundle from the package, no CDN), the user's scenarios
"$V/nkdefections-explore" --port 0 --fit fit.nc --config-dir "$TMP/my_configs" > explore.log 2>&1 &
EXPLORE_PID=$!
for _ in $(seq 1 90); do grep -q "serving http" explore.log && break; sleep 1; done
"$V/python" - "$(grep -o 'http://127.0.0.1:[0-9]*/' explore.log)" <<'PY'
import json, sys, urllib.request
url = sys.argv[1]
assert b"/static/plotly.min.js" in urllib.request.urlopen(url, timeout=30).read()
assert len(urllib.request.urlopen(url + "static/plotly.min.js", timeout=30).read()) > 1_000_000
assert b"nkExplorer" in urllib.request.urlopen(url + "static/explorer.js", timeout=30).read()
assert "my_thaw" in json.load(urllib.request.urlopen(url + "api/init", timeout=60))["scenarios"]
PY
kill "$EXPLORE_PID"; wait "$EXPLORE_PID" || true; EXPLORE_PID=""
# the documentation site, strict, built against the installed wheel: a copy of the clone without src/,
# so mkdocstrings documents (and the hooks' --help pages run) the package as installed
mkdir "$TMP/docsrc"
tar -C "$REPO" --exclude=./src --exclude=./.git --exclude=./.venv --exclude=./.cache --exclude=./build \
  --exclude=./outputs -cf - . | tar -C "$TMP/docsrc" -xf -
(cd "$TMP/docsrc" && PATH="$V:$PATH" NO_MKDOCS_2_WARNING=1 "$V/python" -m mkdocs build --strict -q -d "$TMP/site")
grep -q "FitView" "$TMP/site/reference/api/forecast/index.html" && test -f "$TMP/site/reference/cli/index.html"
NEW="$(find "$SITE" -newer "$TMP/stamp" -not -name '*.pyc' -not -path '*/__pycache__*' | head -5)"
if [ -n "$NEW" ]; then echo "written under site-packages: $NEW" >&2; exit 1; fi
echo "check-installed: ok in $(( $(date +%s) - T0 )) s (outputs in $TMP/work: $(ls | tr '\n' ' '))"
