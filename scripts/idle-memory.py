#!/usr/bin/env python3
"""Server memory per idle gateway connection (interim, until `concord bench idle`).

Starts nothing: point it at a running Concord (or Together) server and its pid.
Registers one user, opens N gateway connections with its token (raw asyncio sockets,
no client library), waits for READY on each, then reads the server's RSS from /proc
before and after and prints the difference per connection.

    concord serve --listen 127.0.0.1:8099 --config high-limits.toml &
    scripts/idle-memory.py --url http://127.0.0.1:8099 --pid $! --count 5000

`--query v=2` measures protocol v2 sessions (HELLO, then READY: the session keeps a
replay buffer holding READY), `--query "v=2&compress=zlib-stream"` (or zstd-stream,
which needs the Python `zstandard` package) compressed ones, each connection's frames
decoded with Python's own zlib / zstandard to check that READY arrived.
"""
import argparse, asyncio, base64, json, os, time, urllib.request


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def register(url, name):
    body = json.dumps({"username": name, "password": "correct-horse-42"}).encode()
    req = urllib.request.Request(url + "/auth/register", body, {"content-type": "application/json"})
    with urllib.request.urlopen(req) as res:
        return json.load(res)["access_token"]


def decoder(query):
    if "compress=zlib-stream" in query:
        import zlib
        return zlib.decompressobj().decompress
    if "compress=zstd-stream" in query:
        import zstandard
        return zstandard.ZstdDecompressor().decompressobj().decompress
    return None


async def read_frame(reader):
    """One unmasked frame: (opcode, payload)."""
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    elif n == 127:
        n = int.from_bytes(await reader.readexactly(8), "big")
    return b0 & 0x0F, await reader.readexactly(n)


async def open_conn(host, port, token, source, query):
    reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
    key = base64.b64encode(os.urandom(16)).decode()
    extra = f"&{query}" if query else ""
    writer.write((f"GET /ws?token={token}{extra} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head[:40]
    # v1: READY first. v2: HELLO, then READY. Compressed: binary frames of one stream.
    decode = decoder(query)
    for _ in range(2):
        opcode, payload = await read_frame(reader)
        message = decode(payload) if decode else payload
        if b'"READY"' in message:
            return reader, writer
        assert b'"HELLO"' in message, message[:60]
    raise AssertionError("no READY")


def masked_text(text):
    """A client text frame (clients must mask), payload under 126 bytes."""
    data, mask = text.encode(), os.urandom(4)
    return bytes([0x81, 0x80 | len(data)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


async def heartbeats(conns, every=20):
    beat = masked_text('{"op":"HEARTBEAT","d":null}')
    while True:
        await asyncio.sleep(every)
        for _, writer in conns:
            writer.write(beat)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--parallel", type=int, default=200)
    ap.add_argument("--settle", type=float, default=2,
                    help="seconds to wait after the last READY before reading RSS; v2 "
                         "connections heartbeat every 20 s meanwhile. 130 shows compressed "
                         "connections after their idle release (30 s) and the server's "
                         "once-a-minute return of free memory to the OS")
    ap.add_argument("--query", default="", help='extra gateway query, e.g. "v=2&compress=zlib-stream"')
    args = ap.parse_args()
    host, port = args.url.split("//")[1].split(":")
    token = register(args.url, f"idle{int(time.time())}")
    await asyncio.sleep(1)
    before = rss_kib(args.pid)
    conns, sem = [], asyncio.Semaphore(args.parallel)

    async def one(i):
        async with sem:
            conns.append(await open_conn(host, int(port), token, f"127.0.0.{2 + i % 200}", args.query))

    started = time.time()
    await asyncio.gather(*(one(i) for i in range(args.count)))
    elapsed = time.time() - started
    beating = asyncio.create_task(heartbeats(conns)) if "v=2" in args.query else None
    await asyncio.sleep(args.settle)
    if beating:
        beating.cancel()
    after = rss_kib(args.pid)
    print(json.dumps({"query": args.query, "connections": len(conns), "connect_ready_per_sec": round(len(conns) / elapsed),
                      "rss_before_kib": before, "rss_after_kib": after,
                      "kib_per_connection": round((after - before) / len(conns), 2)}))
    for _, w in conns:
        w.close()


asyncio.run(main())
