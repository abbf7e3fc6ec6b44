#!/usr/bin/env python3
"""Protocol v2 on the wire, end to end, decoded by Python's own zlib and zstandard.

Point it at a running Concord. It registers a user, creates a server and a channel,
opens three v2 gateway connections (uncompressed, zlib-stream, zstd-stream; raw
asyncio sockets, no client library), posts N messages over REST, and reads every
connection until it has READY and N MESSAGE_CREATEs. Each compressed connection is
decoded with one decompressor fed every binary frame in order; every message must
decode on its own frame's boundary, carry the next sequence number, and match what
was posted. Prints, per connection, the bytes received on the wire (frame headers
included) for READY and for the N messages, and the ratio to the uncompressed ones;
exits non-zero on any mismatch.

    concord serve --listen 127.0.0.1:8099 &
    scripts/v2-wire.py --url http://127.0.0.1:8099 --messages 1000

Needs the `zstandard` package (`pip install zstandard`).
"""
import argparse, asyncio, base64, json, os, sys, time, urllib.request, zlib

import zstandard


def call(url, path, body, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url + path, json.dumps(body).encode(), headers)
    with urllib.request.urlopen(req) as res:
        return json.load(res)


class Conn:
    def __init__(self, name, decode):
        self.name, self.decode = name, decode
        self.wire = 0          # bytes read from the socket after the HTTP upgrade
        self.ready_bytes = 0   # ... up to and including READY

    async def open(self, host, port, token, query):
        self.reader, self.writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        self.writer.write((f"GET /ws?v=2&token={token}{query} HTTP/1.1\r\nHost: {host}\r\n"
                           f"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head[:60]

    async def message(self):
        b0, b1 = await self.reader.readexactly(2)
        n, header = b1 & 0x7F, 2
        if n == 126:
            n, header = int.from_bytes(await self.reader.readexactly(2), "big"), 4
        elif n == 127:
            n, header = int.from_bytes(await self.reader.readexactly(8), "big"), 10
        payload = await self.reader.readexactly(n)
        self.wire += header + n
        opcode = b0 & 0x0F
        if self.decode is None:
            assert opcode == 1, f"{self.name}: expected text, got opcode {opcode}"
            return json.loads(payload)
        assert opcode == 2, f"{self.name}: expected binary, got opcode {opcode}"
        return json.loads(self.decode(payload))


def zlib_decoder():
    inflate = zlib.decompressobj()

    def decode(frame):
        assert frame.endswith(b"\x00\x00\xff\xff"), "a zlib message ends in a sync flush"
        return inflate.decompress(frame)
    return decode


def zstd_decoder():
    return zstandard.ZstdDecompressor().decompressobj().decompress


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--size", type=int, default=100, help="content length of each message")
    ap.add_argument("--servers", type=int, default=10, help="servers the user is in (READY's size)")
    args = ap.parse_args()
    host, port = args.url.split("//")[1].split(":")
    name = f"wire{int(time.time() * 1000) % 10**9}"
    token = call(args.url, "/auth/register", {"username": name, "password": "correct-horse-42"})["access_token"]
    for i in range(args.servers - 1):
        call(args.url, "/servers", {"name": f"community {i}", "is_public": True}, token)
    server = call(args.url, "/servers", {"name": "wire", "is_public": True}, token)["id"]
    channel = call(args.url, f"/servers/{server}/channels", {"name": "general", "type": "text"}, token)["id"]
    conns = [Conn("none", None), Conn("zlib-stream", zlib_decoder()), Conn("zstd-stream", zstd_decoder())]
    for conn in conns:
        query = "" if conn.decode is None else f"&compress={conn.name}"
        await conn.open(host, int(port), token, query)
        hello = await conn.message()
        assert hello["op"] == "HELLO", hello
        ready = await conn.message()
        assert ready["t"] == "READY" and ready["s"] == 1, ready
        conn.ready_bytes = conn.wire
    sent = []
    for i in range(args.messages):
        content = f"message {i} " + "x" * max(0, args.size - 12)
        sent.append(content)
        # Blocking REST calls off the loop: the sockets keep being read meanwhile.
        await asyncio.to_thread(call, args.url, f"/channels/{channel}/messages", {"content": content}, token)

    async def drain(conn):
        got, seq = 0, 1
        while got < len(sent):
            frame = await conn.message()
            if frame.get("op") != "DISPATCH":
                continue
            assert frame["s"] == seq + 1, (conn.name, frame["s"], seq)
            seq = frame["s"]
            if frame["t"] == "MESSAGE_CREATE":
                assert frame["d"]["content"] == sent[got], (conn.name, got)
                got += 1
    await asyncio.wait_for(asyncio.gather(*(drain(c) for c in conns)), 120)
    plain = conns[0]
    report = []
    for conn in conns:
        body = conn.wire - conn.ready_bytes
        report.append({
            "compress": conn.name,
            "ready_and_hello_bytes": conn.ready_bytes,
            "messages": len(sent),
            "message_bytes": body,
            "bytes_per_message": round(body / len(sent), 1),
            "ratio": round(body / (plain.wire - plain.ready_bytes), 3),
        })
    print(json.dumps(report, indent=1))
    for conn in conns:
        conn.writer.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except AssertionError as err:
        print(f"v2-wire: FAILED: {err}", file=sys.stderr)
        sys.exit(1)
