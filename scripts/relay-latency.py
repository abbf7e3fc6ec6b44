#!/usr/bin/env python3
"""What a v2 session costs when its client comes back through another node (issue 14).

Starts two `concord serve` nodes of one cluster from BINARY (one PostgreSQL database,
one NATS prefix, one secret; `cross-node-writes.py` starts them). One user holds two v2
sessions, both identified on node 0: one stays there (direct), the other's client drops
and RESUMEs through node 1, which relays it to node 0 (relayed). Another user posts
MESSAGES messages through node 0's REST API, one every PACE ms; each session's client
notes when each message arrives. Prints one JSON line: delivery latency from the post
(p50/p90/p99, ms) for each session, and node 1's CPU time per relayed message.

    pip install websockets
    createdb -h 127.0.0.1 -U postgres concord_relay
    scripts/relay-latency.py target/release/concord \\
        --database-url postgres://postgres@127.0.0.1:5432/concord_relay [--compress zlib-stream]
"""

import argparse
import asyncio
import importlib.util
import json
import os
import tempfile
import time
import uuid
import zlib

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "cross_node_writes", os.path.join(HERE, "cross-node-writes.py"))
writes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(writes)


class Client:
    """A v2 gateway connection that decodes an optional zlib stream."""

    def __init__(self, ws, compress):
        self.ws = ws
        self.inflate = zlib.decompressobj() if compress else None

    @classmethod
    async def open(cls, addr, compress):
        query = "v=2" + (f"&compress={compress}" if compress else "")
        ws = await websockets.connect(f"ws://{addr}/ws?{query}", max_size=None,
                                      compression=None)
        client = cls(ws, compress)
        hello = await client.next()
        assert hello["op"] == "HELLO", hello
        return client, hello["d"]

    async def next(self):
        data = await self.ws.recv()
        if isinstance(data, bytes):
            data = self.inflate.decompress(data)
        return json.loads(data)

    async def send(self, value):
        await self.ws.send(json.dumps(value))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentiles(values):
    values = sorted(values)
    pick = lambda q: round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 2)
    return {"p50_ms": pick(0.5), "p90_ms": pick(0.9), "p99_ms": pick(0.99)}


async def measure(args, addrs, procs):
    nodes = [writes.Node(a) for a in addrs]
    tag = uuid.uuid4().hex[:8]

    def register(name):
        status, body = nodes[0].call(
            "POST", "/auth/register",
            {"username": f"{name}{tag}", "password": "correct-horse-42"})
        assert status == 201, body
        return body["access_token"]

    poster, reader = register("poster"), register("reader")
    status, server = nodes[0].call("POST", "/servers", {"name": "relay", "is_public": True},
                                   poster)
    assert status == 201, server
    status, channel = nodes[0].call("POST", f"/servers/{server['id']}/channels",
                                    {"name": "general", "type": "text"}, poster)
    assert status == 201, channel
    status, _ = nodes[0].call("POST", f"/servers/{server['id']}/join", None, reader)
    assert status == 201

    async def identify():
        client, hello = await Client.open(addrs[0], args.compress)
        await client.send({"op": "IDENTIFY", "d": {"token": reader, "intents": ["messages"]}})
        ready = await client.next()
        assert ready["t"] == "READY", ready
        return client, hello["session_id"], ready["s"]

    direct, _, _ = await identify()
    dropped, session, seq = await identify()
    dropped.ws.transport.abort()
    relayed, _ = await Client.open(addrs[1], args.compress)
    await relayed.send({"op": "RESUME",
                        "d": {"token": reader, "session_id": session, "seq": seq}})
    while (await relayed.next()).get("t") != "RESUMED":
        pass

    arrived = {"direct": {}, "relayed": {}}

    async def read(name, client):
        got = arrived[name]
        while len(got) < args.messages:
            frame = await client.next()
            if frame.get("t") == "MESSAGE_CREATE":
                got[frame["d"]["content"]] = time.perf_counter()

    readers = [asyncio.create_task(read("direct", direct)),
               asyncio.create_task(read("relayed", relayed))]
    posted = {}
    cpu_before = cpu_seconds(procs[1].pid)
    for n in range(args.messages):
        content = f"m{n}"
        posted[content] = time.perf_counter()
        status, _ = await asyncio.to_thread(
            nodes[0].call, "POST", f"/channels/{channel['id']}/messages",
            {"content": content}, poster)
        assert status == 201
        await asyncio.sleep(args.pace / 1000)
    await asyncio.wait_for(asyncio.gather(*readers), 60)
    cpu = cpu_seconds(procs[1].pid) - cpu_before
    result = {"messages": args.messages, "compress": args.compress or "none"}
    for name, got in arrived.items():
        result[name] = percentiles([got[c] - posted[c] for c in posted])
    result["relay_node_cpu_us_per_message"] = round(cpu / args.messages * 1e6, 1)
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--pace", type=float, default=5.0, help="ms between posts")
    parser.add_argument("--compress", choices=["zlib-stream"], default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        procs, addrs = writes.start_nodes(args.binary, 2, args.database_url, work)
        try:
            asyncio.run(measure(args, addrs, procs))
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait()


if __name__ == "__main__":
    main()
