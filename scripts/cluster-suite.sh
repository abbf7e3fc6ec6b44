#!/usr/bin/env bash
# The server's REST and gateway suite against three nodes as one server:
# CONCORD_TEST_NODES=3 makes every TestServer a cluster of three nodes on a fresh
# PostgreSQL database and a NATS subject prefix of its own, each new client going to
# the next node in turn (crates/concord-testkit). Needs PostgreSQL and NATS as
# `cargo test` does (CONCORD_TEST_DATABASE_URL, CONCORD_TEST_NATS_URL).
#
# Skipped, each for a reason a cluster has by design (docs/deployment.md, "Several
# nodes"); everything else must pass as it does on one node.
set -euo pipefail
cd "$(dirname "$0")/.."

skip=(
  # Counters, /health and /metrics are the node's own; these tests read one node's
  # after traffic that went through the others.
  counters_follow_connections_and_deliveries
  health_counts_live_sessions
  protocol_violations_close_with_the_rfc_codes_and_are_counted
  real_traffic_shows_in_the_metrics
  settings_and_words_are_read_once_until_they_change
  the_webhook_list_is_read_once_per_server_until_it_changes
  internal_addresses_are_refused_at_send_time_unless_allowed
  redirects_are_not_followed
  the_test_route_queues_a_ping_and_is_throttled_per_webhook
  # Connection caps per address and per user are per node.
  gateway_sessions_per_address_are_capped_and_given_back
  gateway_sessions_per_user_are_capped
  # Emoji files live in each node's data directory (shared storage is the operator's).
  emojis_are_uploaded_listed_served_and_deleted_with_events_to_members_only
  # Stopping or restarting a whole cluster: a node of a cluster neither saves v2
  # sessions nor clears voice at start (the others may still hold them).
  shutdown_refuses_new_connections_while_it_drains_the_gateway
  a_restart_leaves_no_stale_session
  a_session_resumes_across_a_graceful_restart_without_losing_an_event
  two_people_chat_in_two_browsers_and_a_restart_loses_and_repeats_nothing
)
args=()
for name in "${skip[@]}"; do args+=(--skip "$name"); done
CONCORD_TEST_NODES=3 cargo test -p concord-server --tests "$@" -- "${args[@]}"
