#!/usr/bin/env bash
# Runs the Autobahn|Testsuite fuzzing client against the gateway's socket code (the
# `autobahn_echo` example of concord-gateway) and prints a table of the results by
# case group. See docs/autobahn.md. Not part of CI.
#
#   scripts/autobahn.sh                 # cases 1-7, 9 and 10 (12 and 13 test
#                                       # permessage-deflate, which /ws does not offer)
#   CASES='["1.*","5.*"]' scripts/autobahn.sh
#
# Needs Autobahn's `wstest` (Python 2.7): AUTOBAHN_VENV names a virtualenv holding it
# (default /work/autobahn/venv27); docs/autobahn.md says how to make one.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${AUTOBAHN_VENV:-/work/autobahn/venv27}"
cases="${CASES:-[\"1.*\",\"2.*\",\"3.*\",\"4.*\",\"5.*\",\"6.*\",\"7.*\",\"9.*\",\"10.*\"]}"
port="${PORT:-9001}"
[ -x "$venv/bin/wstest" ] || { echo "no wstest in $venv (see docs/autobahn.md)" >&2; exit 1; }

cargo build --release --quiet -p concord-gateway --example autobahn_echo
work="$(mktemp -d)"
# Autobahn sends messages of up to 16 MiB: the echo takes them (the limit is the only
# setting that differs from /ws, whose 16 KiB limit its own tests cover).
"${CARGO_TARGET_DIR:-target}/release/examples/autobahn_echo" "127.0.0.1:$port" 16777216 \
  > "$work/echo.out" 2>&1 &
echo_pid=$!
trap 'kill "$echo_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  [ -s "$work/echo.out" ] && break
  sleep 0.1
done

cat > "$work/spec.json" <<JSON
{
  "outdir": "$work/report",
  "servers": [{"agent": "concord-gateway", "url": "ws://127.0.0.1:$port"}],
  "cases": $cases,
  "exclude-cases": [],
  "exclude-agent-cases": {}
}
JSON
(cd "$work" && "$venv/bin/wstest" -m fuzzingclient -s spec.json > wstest.log 2>&1)

python3 - "$work/report/index.json" <<'PY'
import json, sys
from collections import Counter, defaultdict
report = json.load(open(sys.argv[1]))["concord-gateway"]
groups = defaultdict(Counter)
odd = []
for case, result in report.items():
    group = case.split(".")[0]
    groups[group][result["behavior"]] += 1
    if result["behavior"] != "OK" or result["behaviorClose"] not in ("OK", "INFORMATIONAL"):
        odd.append((case, result["behavior"], result["behaviorClose"]))
statuses = sorted({s for c in groups.values() for s in c})
print("| group | cases | " + " | ".join(statuses) + " |")
print("| --- | --- | " + " | ".join("---" for _ in statuses) + " |")
for group in sorted(groups, key=int):
    counts = groups[group]
    print(f"| {group} | {sum(counts.values())} | " + " | ".join(str(counts.get(s, 0)) for s in statuses) + " |")
print()
for case, behavior, close in sorted(odd, key=lambda c: [int(p) for p in c[0].split(".")]):
    print(f"{case}: {behavior} (close: {close})")
bad = [c for c in odd if c[1] in ("FAILED",) or c[2] in ("FAILED",)]
sys.exit(1 if bad else 0)
PY
