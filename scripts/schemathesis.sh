#!/usr/bin/env bash
# Fuzzes the REST API against its own OpenAPI document (GET /openapi.json) with
# schemathesis, on a debug server started here on 127.0.0.1:0 with a fresh data
# directory. See docs/openapi.md.
#
#   scripts/schemathesis.sh                # 50 examples per operation
#   MAX_EXAMPLES=200 SEED=1 scripts/schemathesis.sh
#   scripts/schemathesis.sh --include-tag servers   # extra arguments go to `schemathesis run`
#
# Exits 0 when no check failed in either pass and the server did not panic.
set -euo pipefail
cd "$(dirname "$0")/.."

max_examples="${MAX_EXAMPLES:-50}"
seed="${SEED:-42}"

if ! command -v schemathesis >/dev/null 2>&1; then
  pip install --quiet schemathesis 2>/dev/null \
    || pip install --quiet --break-system-packages schemathesis
fi

cargo build --quiet -p concord

workdir="$(mktemp -d)"
# The limits of .ci/run: the fuzzer sends thousands of requests from one address.
printf '[limits]\nrest_per_ip = { per_second = 100000, burst = 100000 }\nauth_per_ip = { per_second = 1000, burst = 1000 }\n' \
  > "$workdir/concord.toml"
"${CARGO_TARGET_DIR:-target}/debug/concord" serve --listen 127.0.0.1:0 --data-dir "$workdir/data" --config "$workdir/concord.toml" \
  > "$workdir/stdout" 2> "$workdir/stderr" &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true; rm -rf "$workdir"' EXIT
# The bound address is the first line on stdout once the server listens.
for _ in $(seq 1 100); do
  [ -s "$workdir/stdout" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$workdir/stderr" >&2; exit 1; }
  sleep 0.1
done
addr="$(head -1 "$workdir/stdout")"
base="http://$addr"

# One registered user; its access token authenticates every request. It lives 15
# minutes, longer than a run.
token="$(curl -sf "$base/auth/register" -H 'content-type: application/json' \
  -d '{"username":"fuzzer","password":"correct horse battery"}' \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')"

# The checks that say whether the document is true to the server:
#   not_a_server_error           no 5xx, whatever is sent;
#   status_code_conformance      every status answered is documented for the operation;
#   content_type_conformance     and with the documented media type;
#   response_schema_conformance  and with a body that matches the documented schema;
#   response_headers_conformance documented headers (Retry-After on 429) are sent;
#   negative_data_rejection      a request the schema forbids is refused (4xx);
#   unsupported_method           a method the document does not list is 405 with Allow;
#   ignored_auth                 an operation that declares credentials refuses a
#                                request without them.
# Not run: positive_data_acceptance, because a request the schema allows may still
# break a rule that JSON Schema cannot state (a bot name must hold a letter or digit
# after trimming, PATCH .../voice needs at least one flag, a username must be free),
# and the server is right to refuse it with a documented 400 or 409;
# use_after_free and ensure_resource_availability, and the stateful phase, which
# follow OpenAPI links between operations, and the document declares none (the second
# pass below pins ids instead); object_level_authorization, which needs a second
# user's credentials: the REST tests check other users' resources stay out of reach.
#
# /ws is left out: a GET there is a WebSocket upgrade, not a REST call, and the
# refusals it documents (400/401 as text) are probed by tests/openapi.rs.
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,negative_data_rejection,unsupported_method,ignored_auth
report_dir="${REPORT_DIR:-$workdir/report}"
mkdir -p "$report_dir"
report_dir="$(cd "$report_dir" && pwd)"
run() {
  local pass="$1"; shift
  echo "== schemathesis: $pass"
  # From the scratch directory, where schemathesis leaves its .schemathesis cache.
  (cd "$workdir" && schemathesis "$@" run "$base/openapi.json" \
    --url "$base" \
    -H "Authorization: Bearer $token" \
    --checks "$checks" \
    --exclude-path /ws \
    --phases examples,coverage,fuzzing \
    --max-examples "$max_examples" \
    --seed "$seed" \
    --workers 1 \
    --request-timeout 10 \
    --report junit \
    --report-junit-path "$report_dir/$pass.xml" \
    "${extra[@]}")
}
extra=("$@")

# Pass 1: ids as the fuzzer makes them up, so nearly every id names nothing: the
# parsing of every parameter and body, and the "not found" answers.
status=0
run random-ids || status=$?

# Pass 2: every id pinned to a resource the fuzzer may act on (scripts/schemathesis-seed.py
# creates them), so that generated bodies and queries reach the handlers' own rules.
# Deleting operations get resources of their own.
python3 scripts/schemathesis-seed.py "$base" "$token" "$workdir/schemathesis.toml"
run pinned-ids --config-file "$workdir/schemathesis.toml" || status=$?

cp "$workdir/stderr" "$report_dir/server.log"
if grep -q "panicked" "$workdir/stderr"; then
  echo "the server panicked:" >&2
  grep -A5 "panicked" "$workdir/stderr" >&2
  status=1
fi
exit "$status"
