#!/usr/bin/env bash
# Runs `concord bench` against a freshly started release server with the limits the
# benchmarks in BENCHMARKS.md use, then stops the server.
#
#   scripts/bench.sh --scenario idle,fanout,storm -n 1000 --messages 1000 --in-flight 8
#
# Environment: PORT (default 8093), BIN (default target/release/concord),
# CLIENT_BIN (the binary whose `concord bench` drives the load; default BIN: set it
# to compare two servers under one and the same load client),
# EXTRA_LIMITS (more lines for the [limits] table, e.g. "write_linger_ms = 0"),
# CAPS (the connection and session caps lifted for a load from one address; set it
# empty for a binary older than those keys, which would refuse them),
# SERVER_CPUS / CLIENT_CPUS (CPU lists for `taskset -c`, e.g. "0,1" and "2-15": the
# server on two cores of a larger machine, the load client on the others, so that
# the server's figures are not shared with the client's).
# Every argument goes to `concord bench`; the JSON summaries are kept in
# $WORK/bench.json (WORK defaults to a new temporary directory).
set -euo pipefail

PORT=${PORT:-8093}
BIN=${BIN:-target/release/concord}
CLIENT_BIN=${CLIENT_BIN:-$BIN}
WORK=${WORK:-$(mktemp -d -t concord-bench.XXXXXX)}
[ -x "$BIN" ] || { echo "build first: cargo build --release -p concord" >&2; exit 1; }

mkdir -p "$WORK"
rm -rf "$WORK/data"
CAPS=${CAPS-"connections_per_ip = 1000000
sessions_per_ip = 1000000
sessions_per_user = 1000000"}
cat > "$WORK/concord.toml" <<TOML
[limits]
# The bench creates up to tens of thousands of bots from one address.
rest_per_ip = { per_second = 100000, burst = 100000 }
auth_per_ip = { per_second = 100000, burst = 100000 }
per_bot = { per_second = 100000, burst = 100000 }
queue_max_frames = 65536
queue_max_bytes = 67108864
${CAPS}
${EXTRA_LIMITS:-}
TOML

# taskset execs the program, so $! below is the server's own pid.
SERVER_PIN=() CLIENT_PIN=()
[ -n "${SERVER_CPUS:-}" ] && SERVER_PIN=(taskset -c "$SERVER_CPUS")
[ -n "${CLIENT_CPUS:-}" ] && CLIENT_PIN=(taskset -c "$CLIENT_CPUS")

"${SERVER_PIN[@]}" "$BIN" serve --listen "127.0.0.1:$PORT" --config "$WORK/concord.toml" \
    --data-dir "$WORK/data" > "$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true' EXIT
# The server prints its bound address, alone on a line, once it listens. Anything
# else (a server still running on the port, say) must stop the run: the bench would
# otherwise measure whatever answers there.
listening() { grep -qx "127.0.0.1:$PORT" "$WORK/server.log" 2>/dev/null; }
for _ in $(seq 100); do
    listening && break
    kill -0 "$SERVER" 2>/dev/null || break
    sleep 0.1
done
if ! listening || ! kill -0 "$SERVER" 2>/dev/null; then
    echo "the server did not start on port $PORT:" >&2
    cat "$WORK/server.log" >&2
    exit 1
fi

"${CLIENT_PIN[@]}" "$CLIENT_BIN" bench --url "http://127.0.0.1:$PORT" --server-pid "$SERVER" "$@" | tee "$WORK/bench.out"
grep '^{' "$WORK/bench.out" > "$WORK/bench.json" || true
echo "JSON summaries: $WORK/bench.json" >&2
