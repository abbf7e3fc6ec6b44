#!/usr/bin/env python3
"""Server memory per idle gateway connection (interim, until `concord bench idle`).

Starts nothing: point it at a running Concord (or Together) server and its pid.
Registers one user, opens N gateway connections with its token (raw asyncio sockets,
no client library), waits for READY on each, then reads the server's RSS from /proc
before and after and prints the difference per connection.

    concord serve --listen 127.0.0.1:8099 --config high-limits.toml &
    scripts/idle-memory.py --url http://127.0.0.1:8099 --pid $! --count 5000
"""
import argparse, asyncio, base64, json, os, time, urllib.request


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def register(url, name):
    body = json.dumps({"username": name, "password": "password123"}).encode()
    req = urllib.request.Request(url + "/auth/register", body, {"content-type": "application/json"})
    with urllib.request.urlopen(req) as res:
        return json.load(res)["access_token"]


async def open_conn(host, port, token, source):
    reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /ws?token={token} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head[:40]
    # First frame: READY (text, unmasked, length in 7/16/64 bits).
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    elif n == 127:
        n = int.from_bytes(await reader.readexactly(8), "big")
    payload = await reader.readexactly(n)
    assert b'"READY"' in payload
    return reader, writer


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--parallel", type=int, default=200)
    args = ap.parse_args()
    host, port = args.url.split("//")[1].split(":")
    token = register(args.url, f"idle{int(time.time())}")
    await asyncio.sleep(1)
    before = rss_kib(args.pid)
    conns, sem = [], asyncio.Semaphore(args.parallel)

    async def one(i):
        async with sem:
            conns.append(await open_conn(host, int(port), token, f"127.0.0.{2 + i % 200}"))

    started = time.time()
    await asyncio.gather(*(one(i) for i in range(args.count)))
    elapsed = time.time() - started
    await asyncio.sleep(2)
    after = rss_kib(args.pid)
    print(json.dumps({"connections": len(conns), "connect_ready_per_sec": round(len(conns) / elapsed),
                      "rss_before_kib": before, "rss_after_kib": after,
                      "kib_per_connection": round((after - before) / len(conns), 2)}))
    for _, w in conns:
        w.close()


asyncio.run(main())
