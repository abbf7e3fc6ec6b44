#!/usr/bin/env bash
# Runs Concord's cargo-fuzz targets (fuzz/), each for SECONDS (default 600), one after
# another, starting from the committed seeds (fuzz/seeds/<target>) plus whatever an
# earlier run left in fuzz/corpus/<target> (not committed). Not part of CI.
#
#   scripts/fuzz.sh                  # every target, 10 minutes each
#   scripts/fuzz.sh 60 client_op     # one target, one minute
#   JOBS=2 scripts/fuzz.sh           # two targets at a time
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install --locked cargo-fuzz`).
# A crash leaves its input in fuzz/artifacts/<target>/ and makes the script fail;
# reproduce it with `cargo +nightly fuzz run <target> <file>`.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-600}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
jobs="${JOBS:-1}"
cargo +nightly fuzz build -O

run() {
  local target="$1"
  mkdir -p "corpus/$target" "artifacts/$target"
  echo "== $target: ${seconds}s"
  # -rss_limit_mb: the REST target keeps a whole server in process.
  if cargo +nightly fuzz run -O "$target" "corpus/$target" "seeds/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=4096 -print_final_stats=1 \
      > "artifacts/$target/last-run.log" 2>&1; then
    grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "artifacts/$target/last-run.log" | tail -2
    echo "$target: clean"
  else
    tail -40 "artifacts/$target/last-run.log"
    echo "$target: FAILED (log: fuzz/artifacts/$target/last-run.log)"
    return 1
  fi
}

status=0
running=0
for target in "${targets[@]}"; do
  run "$target" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || status=1
    running=$((running - 1))
  fi
done
while [ "$running" -gt 0 ]; do
  wait -n || status=1
  running=$((running - 1))
done
exit "$status"
