#!/usr/bin/env python3
"""A node killed with SIGKILL under load (issue 14): what its clients and the survivors see.

Starts NODES (3) `concord serve` nodes of one cluster from BINARY (one PostgreSQL
database, one NATS prefix, one secret). One reader holds SESSIONS v2 sessions on each
node; a poster posts through every node in turn (the survivors only, once the victim is
dead), one message at a time, PACE ms apart. A second in, the VICTIM node (1) gets SIGKILL
(with --kill-in-post, as a post to it is being handled). Its clients, cut off, reconnect to
the survivors in turn (each after a random 0..JITTER ms, 0 by default) and RESUME with
the last `s` they read, then IDENTIFY afresh on the same socket if the RESUME is refused. Checked, for every cycle:

- every survivor's client read every stored message (each acknowledged one, and one the
  victim stored but could not answer for) once, in order, without a gap in `s`, and no
  survivor's client was cut off; but a message posted to the victim in the second
  before the kill may come out of order: if the victim died between its commit and
  the moment its event left for NATS (its client may even have had its 201: the NATS
  client writes to the socket a moment after it takes the event), the survivors
  announce it once they take the victim for dead, three to four heartbeats after the
  kill (posting goes on for five, and two seconds more);
- a client of the dead node read an unbroken run of the messages up to the kill and, from
  its new READY on (or its RESUMED), every message posted after, once, in order (those
  same few victim's messages again anywhere, or not at all);
- the history, read through a survivor, holds every acknowledged message;
- every post was acknowledged (201), but for the one the victim was serving as it died.

Then every client closes, the victim starts again, and the next of CYCLES (3) runs. After
each cycle the survivors' resident memory and their session and socket gauges are read,
so that anything the dead node left behind on them shows as growth from cycle to cycle.

Prints one JSON line per cycle; a failed check is named on stderr, with the nodes'
warnings, and the script exits 1.

    pip install websockets
    createdb -h 127.0.0.1 -U postgres concord_death
    scripts/node-death.py target/release/concord \\
        --database-url postgres://postgres@127.0.0.1:5432/concord_death --sessions 1000
"""

import argparse
import asyncio
import http.client
import importlib.util
import json
import os
import random
import re
import sys
import tempfile
import threading
import time

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "cross_node_writes", os.path.join(HERE, "cross-node-writes.py"))
writes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(writes)


class Reader(writes.Numbered):
    """One v2 client of the reader: what it read before it was cut off and since its
    session (re)started."""

    def __init__(self, token, home, elsewhere, jitter):
        super().__init__()
        self.token, self.home, self.elsewhere = token, home, elsewhere
        self.jitter = jitter
        self.before, self.after = self.read, []
        self.cut_at = self.back_at = None
        self.resumed = False

    async def identify(self, ws):
        await ws.send(json.dumps(
            {"op": "IDENTIFY", "d": {"token": self.token, "intents": ["messages"]}}))
        ready = json.loads(await ws.recv())
        assert ready.get("t") == "READY", ready
        self.seq = 0
        self.take(ready)

    async def open(self):
        ws = await websockets.connect(f"ws://{self.home}/ws?v=2", max_size=None,
                                      compression=None)
        self.session = json.loads(await ws.recv())["d"]["session_id"]
        await self.identify(ws)
        return ws

    async def reconnect(self):
        """After the node died: RESUME on a survivor, IDENTIFY afresh if refused."""
        await asyncio.sleep(random.uniform(0, self.jitter / 1000))
        ws = await websockets.connect(f"ws://{self.elsewhere}/ws?v=2", max_size=None,
                                      compression=None)
        await ws.recv()  # HELLO
        self.resume_at = time.perf_counter()
        await ws.send(json.dumps({"op": "RESUME", "d": {
            "token": self.token, "session_id": self.session, "seq": self.seq}}))
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("op") == "INVALID_SESSION":
                self.refused_at = time.perf_counter()
                self.read = self.after
                await self.identify(ws)
                return ws
            self.take(frame)
            if frame.get("t") == "RESUMED":
                self.resumed = True
                return ws

    async def run(self, ws, done):
        while True:
            beating = asyncio.create_task(self.beat(ws))
            try:
                while not (done.is_set() and done.last in self.read):
                    try:
                        frame = json.loads(await asyncio.wait_for(ws.recv(), 1))
                    except asyncio.TimeoutError:
                        continue
                    self.take(frame)
                await ws.close()
                return
            except websockets.ConnectionClosed:
                if self.cut_at is not None:
                    raise
                self.cut_at = time.perf_counter()
            finally:
                beating.cancel()
            ws = await self.reconnect()
            self.back_at = time.perf_counter()


def in_order(run, expected, free, prefix=False, suffix=False):
    """`run` holds `expected` (or the start of it, or its end from the first message
    `run` has) in order, each message once, but for those in `free`, which may come
    anywhere or not at all."""
    if len(run) != len(set(run)) or not set(run) <= set(expected):
        return False
    run = [c for c in run if c not in free]
    expected = [c for c in expected if c not in free]
    if suffix:
        expected = expected[expected.index(run[0]):] if run else []
    if prefix:
        expected = expected[:len(run)]
    return run == expected


def divergence(run, expected, free):
    """Where `run` (a suffix of `expected`, but for `free`) first departs from it: a few
    messages on each side, and which of them are free."""
    kept = [c for c in run if c not in free]
    want = [c for c in expected if c not in free]
    want = want[want.index(kept[0]):] if kept and kept[0] in want else want
    at = next((n for n, (x, y) in enumerate(zip(kept, want)) if x != y), min(len(kept), len(want)))
    twice = sorted({c for c in run if run.count(c) > 1})
    return (f"read {kept[max(0, at - 2):at + 4]} where {want[max(0, at - 2):at + 4]} was due "
            f"({len(kept)} read, {len(want)} due); twice: {twice[:5]}; free: {sorted(free)}")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def gauges(addr):
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    found = {}
    for name in ("concord_gateway_sessions", "concord_gateway_sockets",
                 "concord_gateway_relayed_sessions", "concord_gateway_replay_bytes"):
        values = re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)
        found[name.removeprefix("concord_gateway_")] = sum(float(v) for v in values)
    return found


async def cycle(args, addrs, procs, world, failures):
    poster, reader, channel = world
    victim = args.victim
    survivors = [a for n, a in enumerate(addrs) if n != victim]
    readers = []
    for n, addr in enumerate(addrs):
        for k in range(args.sessions):
            readers.append(Reader(reader, addr, survivors[k % len(survivors)], args.jitter))
    gate = asyncio.Semaphore(64)

    async def open_one(r):
        async with gate:
            return await r.open()

    opened = await asyncio.gather(*(open_one(r) for r in readers))
    done = asyncio.Event()
    done.last = None
    tasks = [asyncio.create_task(r.run(ws, done)) for r, ws in zip(readers, opened)]

    posts = []  # (content, sent at, latency, status: None if the node did not answer)
    to_victim = set()  # the contents posted through the victim
    stop_posting = asyncio.Event()
    nodes = [writes.Node(a) for a in addrs]
    killed_at = None
    tag = f"{random.getrandbits(32):08x}-"
    # With --kill-in-post, the poster kills the victim from inside a post to it.
    kill = {"armed": False, "at": None}
    killed = asyncio.Event()

    def call(node, content, kill_after):
        if kill_after is not None:
            def fire():
                kill["at"] = time.perf_counter()
                procs[victim].kill()
            threading.Timer(kill_after, fire).start()
        return node.call("POST", f"/channels/{channel}/messages", {"content": content}, poster)

    async def post():
        turn = 0
        while not stop_posting.is_set():
            turn += 1
            if killed_at is not None and turn % len(nodes) == victim:
                continue
            # Unique across cycles: the history read back holds every cycle's posts.
            content = f"{tag}m{len(posts)}"
            sent = time.perf_counter()
            kill_after = None
            if turn % len(nodes) == victim and kill["armed"]:
                kill["armed"] = False
                kill_after = random.uniform(0, args.kill_in_post / 1000)
            try:
                status, _ = await asyncio.to_thread(
                    call, nodes[turn % len(nodes)], content, kill_after)
            except (OSError, http.client.HTTPException):
                status = None
            posts.append((content, sent, time.perf_counter() - sent, status))
            if turn % len(nodes) == victim:
                to_victim.add(content)
            if kill_after is not None:
                killed.set()
            await asyncio.sleep(args.pace / 1000)

    posting = asyncio.create_task(post())
    await asyncio.sleep(1)
    if args.kill_in_post:
        # 0..KILL_IN_POST ms after a post to the victim leaves: inside its handling,
        # some of the time between its commit and its publish.
        kill["armed"] = True
        await killed.wait()
        while kill["at"] is None:
            await asyncio.sleep(0.01)
        killed_at = kill["at"]
    else:
        killed_at = time.perf_counter()
        procs[victim].kill()
    procs[victim].wait()
    cut = [r for r in readers if r.home == addrs[victim]]
    await writes.until(lambda: all(r.back_at is not None for r in cut), tasks)
    # The survivors take the victim for dead three heartbeats after its last (at their
    # next heartbeat: up to four after the kill; one more for a loaded machine), and
    # announce what it stored and never published.
    await asyncio.sleep(max(1, killed_at + 5 * args.heartbeat + 2 - time.perf_counter()))
    stop_posting.set()
    await posting

    api = writes.Node(survivors[0])
    stored, before = set(), None
    while True:
        query = f"/channels/{channel}/messages?limit=100" + (f"&before={before}" if before else "")
        status, page = api.call("GET", query, None, poster)
        assert status == 200, page
        if not page:
            break
        stored.update(m["content"] for m in page)
        before = page[-1]["id"]  # newest first
    acknowledged = [content for content, _, _, status in posts if status == 201]
    # What every client must read: each stored message, in the order it was posted
    # (acknowledged, or cut off with its node after the commit).
    expected = [content for content, _, _, _ in posts if content in stored]
    # Posted through the victim in its last second (answered or not): announced as
    # usual, or, if it died before the event left for NATS, by the survivors once
    # they took it for dead, after later messages.
    unanswered = {content for content, _, _, status in posts if status is None}
    free = unanswered | {content for content, sent, _, _ in posts
                         if content in to_victim and killed_at - 1 <= sent}
    order = {c: n for n, c in enumerate(expected)}
    late = {c for r in readers if r.home != addrs[victim] for n, c in enumerate(r.before)
            if c in free and any(order.get(x, -1) > order.get(c, -1) for x in r.before[:n])}
    done.last = [c for c in expected if c not in free][-1]
    done.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 120)

    missing = [c for c in acknowledged if c not in stored]
    if missing:
        failures.append(f"{len(missing)} acknowledged messages not in the history: {missing[:5]}")
    for content, sent, took, status in posts:
        if status is None and sent + took < killed_at:
            failures.append(f"post {content} got no answer before the kill")
        elif status not in (201, None):
            failures.append(f"post {content} answered {status}")
    for r in readers:
        if r.home != addrs[victim]:
            if r.cut_at is not None:
                failures.append(f"a client of survivor {r.home} was cut off")
            if set(r.before) != set(expected) or not in_order(r.before, expected, free) \
                    or r.gaps:
                unread = [c for c in expected if c not in r.before]
                at = next((n for n, (x, y) in enumerate(zip(r.before, expected)) if x != y), None)
                failures.append(f"a client of survivor {r.home} read {len(r.before)} of "
                                f"{len(expected)} messages with {r.gaps} gaps; "
                                f"not read: {unread[:5]}; read from the first out of place: "
                                f"{r.before[at:at + 5] if at is not None else []} for "
                                f"{expected[at:at + 5] if at is not None else []}")
            continue
        run = r.before + r.after if r.resumed else r.before
        if not in_order(run, expected, free, prefix=True) or r.gaps:
            failures.append(f"a client of the dead node read {run[:3]}… ({len(run)}), "
                            f"{r.gaps} gaps, before it was cut off")
        if not r.resumed:
            if not r.after:
                failures.append("a reconnected client read nothing after its new READY")
            elif not in_order(r.after, expected, free, suffix=True):
                failures.append(f"a client of the dead node, on {r.elsewhere} since its new "
                                f"READY, has a gap or a message twice: "
                                f"{divergence(r.after, expected, free)}")

    # Every client closed: what the survivors still hold.
    await asyncio.sleep(3)
    left = {a: {**gauges(a), "rss_kib": rss_kib(procs[n].pid)}
            for n, a in enumerate(addrs) if n != victim}
    latency_before = [lat for _, sent, lat, _ in posts if sent < killed_at]
    latency_after = [lat for _, sent, lat, _ in posts if killed_at <= sent < killed_at + 10]
    return {
        "sessions": len(readers),
        "messages": len(acknowledged),
        "stored_unanswered": len(stored & unanswered),
        "announced_late": len(late),
        "unanswered": sum(status is None for _, _, _, status in posts),
        "cut_off": len(cut),
        "resumed": sum(r.resumed for r in cut),
        "identified_afresh": sum(not r.resumed for r in cut),
        "cut_to_back": writes.spread([r.back_at - r.cut_at for r in cut]),
        "kill_to_back": writes.spread([r.back_at - killed_at for r in cut]),
        "resume_to_refused": writes.spread([r.refused_at - r.resume_at for r in cut if not r.resumed]),
        "post_before_kill": writes.spread(latency_before),
        "post_in_10s_after_kill": writes.spread(latency_after),
        "survivors_after": left,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--sessions", type=int, default=1000, help="v2 sessions per node")
    parser.add_argument("--pace", type=float, default=20.0, help="ms between posts")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--victim", type=int, default=1, help="the node killed")
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--kill-in-post", type=float, default=0.0,
                        help="kill the victim 0..KILL_IN_POST ms after a post to it "
                             "leaves (0: a second in, whatever it is doing)")
    parser.add_argument("--heartbeat", type=int, default=5,
                        help="the nodes' bus heartbeat, seconds (bus_heartbeat_secs)")
    parser.add_argument("--jitter", type=float, default=0.0,
                        help="a cut-off client waits 0..JITTER ms before it reconnects "
                             "(concord-client's first attempt: 1000)")
    args = parser.parse_args()
    if not 0 <= args.victim < args.nodes or args.nodes < 2:
        parser.error("--victim must name a node, and a survivor must remain")
    os.environ["CONCORD_BUS_HEARTBEAT_SECS"] = str(args.heartbeat)
    with tempfile.TemporaryDirectory() as work:
        procs, addrs = writes.start_nodes(args.binary, args.nodes, args.database_url, work,
                                          limits=writes.ONE_READER, logs=True)

        failures = []
        try:
            survivor = writes.Node(addrs[0 if args.victim else 1])
            world = writes.chat(survivor, "death")
            for n in range(args.cycles):
                result = asyncio.run(cycle(args, addrs, procs, world, failures))
                print(json.dumps({"cycle": n + 1, **result}), flush=True)
                if failures:
                    break
                procs[args.victim], addrs[args.victim] = writes.start_node(args.victim)
        except Exception:
            writes.show_logs(work, args.nodes)
            raise
        finally:
            writes.stop_all(procs)
        if failures:
            for failure in failures[:20]:
                print("failed:", failure, file=sys.stderr)
            writes.show_logs(work, args.nodes)
            sys.exit(1)


if __name__ == "__main__":
    main()
