#!/usr/bin/env python3
"""What a write costs when every node must apply it before it answers (issue 14).

Starts NODES `concord serve` processes of one cluster (one PostgreSQL database, one
NATS prefix, one secret) from BINARY, then, ROUNDS times: the owner, through node 0,
denies a member VIEW_CHANNEL with a channel override; the member reads the channel
through the next node at once (must be 403); the owner removes the override; the
member reads through the node after (must be 200). Times each write as the client
sees it and counts reads that found the old state (stale). With --nodes 1 the same
run on one node is the baseline: the difference is the cost of the barrier.

With --posts, each round is instead one message posted by the member through the next
node in turn: what a write that changes no shared state costs (every write first waits
until its node has applied what the others published before it came).

    createdb -h 127.0.0.1 -U postgres concord_writes
    scripts/cross-node-writes.py target/release/concord \\
        --database-url postgres://postgres@127.0.0.1:5432/concord_writes --nodes 3

Prints one JSON line: nodes, writes, p50/p90/p99 write latency (ms), stale reads.
"""

import argparse
import asyncio
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid


class Node:
    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)

    def call(self, method, path, body=None, token=None):
        headers = {}
        if body is not None:
            headers["content-type"] = "application/json"
        if token:
            headers["authorization"] = f"Bearer {token}"
        self.conn.request(
            method, path, body=None if body is None else json.dumps(body), headers=headers
        )
        res = self.conn.getresponse()
        data = res.read()
        return res.status, (json.loads(data) if data else None)


def start_nodes(binary, count, database_url, work, limits="", logs=False):
    """Starts `count` nodes of one cluster (one node: no bus), each with the generous
    REST limits below plus `limits` (more `[limits]` lines); with `logs`, node n's log
    goes to `work/node<n>.log`. `start_node` starts one more, or one again, with the
    same settings."""
    config = os.path.join(work, "concord.toml")
    with open(config, "w") as f:
        f.write(
            "[limits]\n"
            "rest_per_ip = { per_second = 100000, burst = 100000 }\n"
            "auth_per_ip = { per_second = 1000, burst = 1000 }\n"
            + limits
        )
    env = dict(os.environ, CONCORD_DATABASE_URL=database_url)
    if count > 1:
        env.update(
            CONCORD_BUS_URL=os.environ.get("BUS_URL", "nats://127.0.0.1:4222"),
            CONCORD_BUS_PREFIX=f"concord-writes.{uuid.uuid4().hex}",
            CONCORD_JWT_SECRET="cross-node-writes-secret-0123456789abcdef",
        )
    start_nodes.settings = (binary, config, env, work, logs)
    procs, addrs = zip(*(start_node(n) for n in range(count)))
    return list(procs), list(addrs)


def start_node(n):
    """Node n of the cluster `start_nodes` started last (its data dir, its log, appended
    to): the process and the address it listens on."""
    binary, config, env, work, logs = start_nodes.settings
    proc = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--config", config,
         "--data-dir", os.path.join(work, f"data{n}")],
        env=env, stdout=subprocess.PIPE, text=True,
        stderr=open(os.path.join(work, f"node{n}.log"), "a") if logs else subprocess.DEVNULL,
    )
    # A node prints its bound address, alone on its first line, once it listens.
    return proc, proc.stdout.readline().strip()


# The following serve the scripts that load this one (drain-handover.py, node-death.py).

# `start_nodes` limits for one reader holding every session, from one address.
ONE_READER = (
    "connections_per_ip = 100000\n"
    "sessions_per_ip = 100000\n"
    "sessions_per_user = 100000\n"
)


def chat(node, name):
    """Through `node`: a poster, a reader, a public server `name` the reader joined and a
    text channel in it. Returns the poster's token, the reader's and the channel's id."""
    tag = uuid.uuid4().hex[:8]

    def register(who):
        status, body = node.call("POST", "/auth/register",
                                 {"username": f"{who}{tag}", "password": "correct-horse-42"})
        assert status == 201, body
        return body["access_token"]

    poster, reader = register("poster"), register("reader")
    status, server = node.call("POST", "/servers", {"name": name, "is_public": True}, poster)
    assert status == 201, server
    status, channel = node.call("POST", f"/servers/{server['id']}/channels",
                                {"name": "general", "type": "text"}, poster)
    assert status == 201, channel
    status, _ = node.call("POST", f"/servers/{server['id']}/join", None, reader)
    assert status == 201
    return poster, reader, channel["id"]


class Numbered:
    """What a v2 client read: MESSAGE_CREATE contents into `read`, and gaps in `s`."""

    def __init__(self):
        self.seq = 0
        self.gaps = 0
        self.read = []

    def take(self, frame):
        s = frame.get("s")
        if s is not None:
            if s != self.seq + 1:
                self.gaps += 1
            self.seq = s
        if frame.get("t") == "MESSAGE_CREATE":
            self.read.append(frame["d"]["content"])

    @staticmethod
    async def beat(ws):
        while True:
            await asyncio.sleep(20)
            await ws.send(json.dumps({"op": "HEARTBEAT", "d": None}))


async def until(condition, tasks):
    """Returns once `condition()` holds; raises as soon as one of `tasks` failed."""
    while not condition():
        failed = [t for t in tasks if t.done() and t.exception() is not None]
        if failed:
            raise RuntimeError(f"{len(failed)} clients failed, first: {failed[0].exception()!r}")
        await asyncio.sleep(0.05)


def spread(values):
    """p50, p99 and max of `values` (seconds), in ms; None if there are none."""
    values = sorted(values)
    if not values:
        return None
    pick = lambda q: round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 1)
    return {"p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": pick(1.0)}


def show_logs(work, count, also=()):
    """The last warnings and errors (and lines with any of `also`) of each node's log."""
    for n in range(count):
        with open(os.path.join(work, f"node{n}.log")) as log:
            lines = [l for l in log if any(w in l for w in ("WARN", "ERROR", *also))]
        print(f"node {n}:", "".join(lines[-20:]), file=sys.stderr)


def stop_all(procs):
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        proc.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--posts", action="store_true",
                        help="time message posts through each node in turn instead")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as work:
        procs, addrs = start_nodes(args.binary, args.nodes, args.database_url, work)
        try:
            nodes = [Node(a) for a in addrs]
            tag = uuid.uuid4().hex[:8]

            def register(name):
                status, body = nodes[0].call(
                    "POST", "/auth/register",
                    {"username": f"{name}{tag}", "password": "correct-horse-42"},
                )
                assert status == 201, body
                return body["access_token"], body["user"]["id"]

            owner, _ = register("owner")
            member, member_id = register("member")
            status, server = nodes[0].call(
                "POST", "/servers", {"name": "writes", "is_public": True}, owner)
            assert status == 201, server
            status, channel = nodes[0].call(
                "POST", f"/servers/{server['id']}/channels",
                {"name": "general", "type": "text"}, owner)
            assert status == 201, channel
            status, _ = nodes[0].call(
                "POST", f"/servers/{server['id']}/join", None, member)
            assert status == 201
            messages = f"/channels/{channel['id']}/messages"
            overrides = f"/channels/{channel['id']}/overrides"

            latencies, stale = [], 0
            for round_ in range(args.rounds if args.posts else 0):
                started = time.perf_counter()
                status, _ = nodes[round_ % len(nodes)].call(
                    "POST", messages, {"content": f"post {round_}"}, member)
                latencies.append(time.perf_counter() - started)
                assert status == 201
            for round_ in range(0 if args.posts else args.rounds):
                reader = nodes[(2 * round_ + 1) % len(nodes)]
                started = time.perf_counter()
                status, override = nodes[0].call(
                    "PUT", overrides, {"user_id": member_id, "allow": 0, "deny": 1}, owner)
                latencies.append(time.perf_counter() - started)
                assert status in (200, 201), override
                status, _ = reader.call("GET", messages, None, member)
                stale += status != 403
                reader = nodes[(2 * round_ + 2) % len(nodes)]
                started = time.perf_counter()
                status, _ = nodes[0].call(
                    "DELETE", f"{overrides}/{override['id']}", None, owner)
                latencies.append(time.perf_counter() - started)
                assert status == 204
                status, _ = reader.call("GET", messages, None, member)
                stale += status != 200
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait()

    latencies.sort()
    pick = lambda q: round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2)
    print(json.dumps({
        "nodes": args.nodes,
        "writes": len(latencies),
        "p50_ms": pick(0.5),
        "p90_ms": pick(0.9),
        "p99_ms": pick(0.99),
        "mean_ms": round(statistics.mean(latencies) * 1000, 2),
        "stale_reads": stale,
    }))


if __name__ == "__main__":
    main()
