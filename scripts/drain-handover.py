#!/usr/bin/env python3
"""A node drained under load hands its v2 sessions over (issue 14): how long its clients
wait, and whether each still gets every message once, in order.

Starts NODES (3) `concord serve` nodes of one cluster from BINARY (one PostgreSQL
database, one NATS prefix, one secret). SESSIONS v2 sessions of one reader identify on
the first STOPPING (1) nodes, in turn; a poster posts through the last node, one message
every PACE ms, from before those nodes are sent SIGTERM (all at once) until every client
has resumed and then some. Each client, told to RECONNECT, resumes through the nodes that
stay, in turn, with the last `s` it read. Prints one JSON line: the clients' wait from
SIGTERM to RESUMED (p50/p99/max, ms), how many RESUMEs were refused, how many clients got
every message exactly once in order, and the time from SIGTERM until the stopped nodes
exited. A refused client is named on stderr, with the nodes' warnings, and the script
exits 1.

    pip install websockets
    createdb -h 127.0.0.1 -U postgres concord_drain
    scripts/drain-handover.py target/release/concord \\
        --database-url postgres://postgres@127.0.0.1:5432/concord_drain --sessions 2000
    # two of four nodes stopping at once (a rolling deploy of two):
    scripts/drain-handover.py target/release/concord --database-url ... --nodes 4 --stopping 2
"""

import argparse
import asyncio
import importlib.util
import json
import os
import signal
import sys
import tempfile
import time

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "cross_node_writes", os.path.join(HERE, "cross-node-writes.py"))
writes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(writes)


class Reader(writes.Numbered):
    """One v2 session's client: what it read, and when it resumed."""

    def __init__(self, token):
        super().__init__()
        self.token = token
        self.messages = self.read
        self.told_at = None
        self.resumed_at = None
        self.refused = False

    async def identify(self, addr):
        ws = await websockets.connect(f"ws://{addr}/ws?v=2", max_size=None, compression=None)
        hello = json.loads(await ws.recv())
        await ws.send(json.dumps(
            {"op": "IDENTIFY", "d": {"token": self.token, "intents": ["messages"]}}))
        ready = json.loads(await ws.recv())
        assert ready.get("t") == "READY", ready
        self.take(ready)
        return ws, hello["d"]["session_id"]

    async def run(self, ws, session, other, done):
        self.session, self.via = session, other
        beating = asyncio.create_task(self.beat(ws))
        try:
            while (frame := json.loads(await ws.recv())).get("op") != "RECONNECT":
                self.take(frame)
        finally:
            beating.cancel()
        self.told_at = time.perf_counter()
        try:
            await ws.recv()
        except websockets.ConnectionClosed:
            pass
        self.closed_at = time.perf_counter()
        ws = await websockets.connect(f"ws://{other}/ws?v=2", max_size=None, compression=None)
        await ws.recv()  # HELLO
        self.hello_at = time.perf_counter()
        await ws.send(json.dumps({"op": "RESUME", "d": {
            "token": self.token, "session_id": session, "seq": self.seq}}))
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("op") == "INVALID_SESSION":
                self.refused = self.seq
                self.resumed_at = time.perf_counter()
                await ws.close()
                return
            self.take(frame)
            if frame.get("t") == "RESUMED":
                self.resumed_at = time.perf_counter()
                break
        beating = asyncio.create_task(self.beat(ws))
        try:
            while not (done.is_set() and len(self.messages) >= done.count):
                try:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 1))
                except asyncio.TimeoutError:
                    continue
                self.take(frame)
        finally:
            beating.cancel()
            await ws.close()


async def measure(args, addrs, procs):
    api = writes.Node(addrs[-1])
    stopping, staying = addrs[:args.stopping], addrs[args.stopping:]
    poster, reader, channel = writes.chat(api, "drain")

    readers = [Reader(reader) for _ in range(args.sessions)]
    gate = asyncio.Semaphore(64)

    async def open_one(n, r):
        async with gate:
            return await r.identify(stopping[n % len(stopping)])

    opened = await asyncio.gather(*(open_one(n, r) for n, r in enumerate(readers)))
    done = asyncio.Event()
    done.count = None
    tasks = [asyncio.create_task(r.run(ws, session, staying[n % len(staying)], done))
             for n, (r, (ws, session)) in enumerate(zip(readers, opened))]

    posted = 0
    stop_posting = asyncio.Event()

    async def post():
        nonlocal posted
        while not stop_posting.is_set():
            status, _ = await asyncio.to_thread(
                api.call, "POST", f"/channels/{channel}/messages",
                {"content": f"m{posted}"}, poster)
            assert status == 201, status
            posted += 1
            await asyncio.sleep(args.pace / 1000)

    posting = asyncio.create_task(post())
    await asyncio.sleep(1)
    drained_at = time.perf_counter()
    for proc in procs[:args.stopping]:
        proc.send_signal(signal.SIGTERM)
    async def exit_time():
        for proc in procs[:args.stopping]:
            await asyncio.to_thread(proc.wait)
        return time.perf_counter()

    exited = asyncio.create_task(exit_time())
    await writes.until(lambda: all(r.resumed_at is not None for r in readers), tasks)
    await asyncio.sleep(1)
    stop_posting.set()
    await posting
    done.count = posted
    done.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 120)
    exited_at = await exited
    waits = [r.resumed_at - drained_at for r in readers if not r.refused]
    expected = [f"m{n}" for n in range(posted)]
    complete = sum(1 for r in readers if r.messages == expected and not r.gaps)
    result = {
        "sessions": args.sessions,
        "messages": posted,
        "refused": sum(r.refused is not False for r in readers),
        "every_message_once_in_order": complete,
        "told_to_reconnect": writes.spread(r.told_at - drained_at for r in readers),
        "socket_closed": writes.spread(r.closed_at - drained_at for r in readers),
        "resume_sent": writes.spread(r.hello_at - drained_at for r in readers),
        "resumed": writes.spread(waits),
        "resume_to_resumed": writes.spread(r.resumed_at - r.hello_at for r in readers),
    }
    result["node_exit_ms"] = round((exited_at - drained_at) * 1000, 1)
    print(json.dumps(result))
    for r in readers:
        if r.refused is not False:
            print(f"refused: session {r.session} through {r.via} with seq {r.refused}, "
                  f"RESUME sent {round((r.hello_at - drained_at) * 1000, 1)} ms after SIGTERM, "
                  f"refused {round((r.resumed_at - drained_at) * 1000, 1)} ms after",
                  file=sys.stderr)
    return result["refused"] == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--pace", type=float, default=20.0, help="ms between posts")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--stopping", type=int, default=1,
                        help="nodes that hold the sessions and stop at once (the first ones)")
    args = parser.parse_args()
    if not 1 <= args.stopping < args.nodes:
        parser.error("--stopping must leave at least one node")
    with tempfile.TemporaryDirectory() as work:
        procs, addrs = writes.start_nodes(args.binary, args.nodes, args.database_url, work,
                                          limits=writes.ONE_READER, logs=True)

        try:
            if not asyncio.run(measure(args, addrs, procs)):
                writes.show_logs(work, args.nodes, ("handed", "taken over"))
                sys.exit(1)
        except Exception:
            writes.show_logs(work, args.nodes, ("handed", "taken over"))
            raise
        finally:
            writes.stop_all(procs)


if __name__ == "__main__":
    main()
