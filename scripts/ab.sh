#!/usr/bin/env bash
# A/B of two release binaries on the fan-out scenario: N pairs, alternating in ABBA
# order so that drift of the machine falls on both alike. Prints one line per run
# (pair, label, server CPU µs per delivery) and a summary.
#
#   scripts/ab.sh /tmp/concord-a /tmp/concord-b [N]
#
# CAPS_A / CAPS_B, when set, replace bench.sh's CAPS for that binary (CAPS_A="" for
# a binary older than the connection caps: it refuses their keys).
# Extra `concord bench` arguments may be given in BENCH_ARGS (default: the fan-out
# run BENCHMARKS.md uses). Each run's files are kept under $WORK (default: a new
# temporary directory).
set -euo pipefail
A=${1:?binary A}
B=${2:?binary B}
N=${3:-10}
BENCH_ARGS=${BENCH_ARGS:---protocol 1 --scenario fanout -n 1000 --messages 1500 --in-flight 8 --probes 5 --duration 120s}
WORK=${WORK:-$(mktemp -d -t concord-ab.XXXXXX)}
cd "$(dirname "$0")/.."
results="$WORK/results.tsv"
: > "$results"
for i in $(seq 1 "$N"); do
  if (( i % 2 )); then order="A B"; else order="B A"; fi
  for label in $order; do
    bin=$A
    [ "$label" = B ] && bin=$B
    run="$WORK/$label-$i"
    caps_var=CAPS_$label
    if [ -n "${!caps_var+x}" ]; then export CAPS="${!caps_var}"; else unset CAPS; fi
    # shellcheck disable=SC2086
    BIN=$bin WORK=$run scripts/bench.sh --json $BENCH_ARGS > "$run.log" 2>&1
    value=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["server_cpu_us_per_delivery"])' "$run/bench.json")
    printf '%s\t%s\t%s\n' "$i" "$label" "$value" | tee -a "$results"
  done
done
python3 - "$results" <<'PY'
import statistics as st, sys
rows = [line.split("\t") for line in open(sys.argv[1])]
runs = {label: [float(r[2]) for r in rows if r[1] == label] for label in ("A", "B")}
for label, values in runs.items():
    print(f"{label}: mean {st.mean(values):.3f} median {st.median(values):.3f} "
          f"min {min(values):.3f} max {max(values):.3f} µs per delivery")
diffs = [a - b for a, b in zip(runs["A"], runs["B"])]
if len(diffs) > 1:
    print(f"A - B per pair: mean {st.mean(diffs):+.3f} µs, sd {st.stdev(diffs):.3f}; "
          f"A lower in {sum(d < 0 for d in diffs)} of {len(diffs)} pairs")
PY
