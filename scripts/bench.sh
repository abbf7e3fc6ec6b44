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
# DATABASE_URL (a postgres:// URL: the server on PostgreSQL; the database must exist
# and be empty, e.g. `createdb -h 127.0.0.1 -U postgres concord_bench_1`), NODES (default 1: with more, that many nodes on
# ports PORT, PORT+1, … share DATABASE_URL, which is then required, and the NATS at
# BUS_URL, default nats://127.0.0.1:4222; the bench spreads its connections over their
# gateways, posts through the first and adds up their CPU time).
# Every argument goes to `concord bench`; the JSON summaries are kept in
# $WORK/bench.json (WORK defaults to a new temporary directory), and with several
# nodes each node's bus counters at the end in $WORK/bus-node<n>.txt.
set -euo pipefail

PORT=${PORT:-8093}
BIN=${BIN:-target/release/concord}
CLIENT_BIN=${CLIENT_BIN:-$BIN}
WORK=${WORK:-$(mktemp -d -t concord-bench.XXXXXX)}
[ -x "$BIN" ] || { echo "build first: cargo build --release -p concord" >&2; exit 1; }

mkdir -p "$WORK"
rm -rf "$WORK"/data*
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

NODES=${NODES:-1}
if [ "$NODES" -gt 1 ] && [ -z "${DATABASE_URL:-}" ]; then
    echo "NODES=$NODES needs DATABASE_URL=postgres://…" >&2
    exit 1
fi
NODE_ENV=()
[ -n "${DATABASE_URL:-}" ] && NODE_ENV+=("CONCORD_DATABASE_URL=$DATABASE_URL")
if [ "$NODES" -gt 1 ]; then
    NODE_ENV+=("CONCORD_BUS_URL=${BUS_URL:-nats://127.0.0.1:4222}"
        "CONCORD_BUS_PREFIX=concord-bench.$$"
        "CONCORD_JWT_SECRET=bench-cluster-secret-0123456789abcdef")
fi
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null || true' EXIT
for n in $(seq 0 $((NODES - 1))); do
    port=$((PORT + n))
    env "${NODE_ENV[@]}" "${SERVER_PIN[@]}" "$BIN" serve --listen "127.0.0.1:$port" \
        --config "$WORK/concord.toml" --data-dir "$WORK/data$n" > "$WORK/server$n.log" 2>&1 &
    PIDS+=("$!")
    # A node prints its bound address, alone on a line, once it listens. Anything
    # else (a server still running on the port, say) must stop the run: the bench
    # would otherwise measure whatever answers there.
    listening() { grep -qx "127.0.0.1:$port" "$WORK/server$n.log" 2>/dev/null; }
    for _ in $(seq 300); do
        listening && break
        kill -0 "${PIDS[$n]}" 2>/dev/null || break
        sleep 0.1
    done
    if ! listening || ! kill -0 "${PIDS[$n]}" 2>/dev/null; then
        echo "node $n did not start on port $port:" >&2
        cat "$WORK/server$n.log" >&2
        exit 1
    fi
done
SERVER=${PIDS[0]}
MORE=()
if [ "$NODES" -gt 1 ]; then
    urls="" pids=""
    for n in $(seq 1 $((NODES - 1))); do
        urls="$urls${urls:+,}ws://127.0.0.1:$((PORT + n))/ws"
        pids="$pids${pids:+,}${PIDS[$n]}"
    done
    MORE=(--also-ws-url "$urls" --also-server-pid "$pids")
fi

"${CLIENT_PIN[@]}" "$CLIENT_BIN" bench --url "http://127.0.0.1:$PORT" --server-pid "$SERVER" "${MORE[@]}" "$@" | tee "$WORK/bench.out"
grep '^{' "$WORK/bench.out" > "$WORK/bench.json" || true
echo "JSON summaries: $WORK/bench.json" >&2
if [ "$NODES" -gt 1 ]; then
    # What crossed the bus, per node, before the nodes stop: messages by outcome,
    # arrivals out of order, the link to NATS.
    for n in $(seq 0 $((NODES - 1))); do
        curl -s --max-time 5 "http://127.0.0.1:$((PORT + n))/metrics" \
            | grep '^concord_bus_' > "$WORK/bus-node$n.txt" || true
        echo "node $n:" $(sed 's/^concord_bus_//' "$WORK/bus-node$n.txt") >&2
    done
fi
