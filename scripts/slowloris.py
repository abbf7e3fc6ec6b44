#!/usr/bin/env python3
"""Half-open handshakes against a running Concord server (issue 16).

Starts nothing: give it the server's host:port and pid. It opens N connections that
each send the start of a request and never finish its headers, then for --hold
seconds samples the server's open file descriptors (/proc/<pid>/fd) and how many of
its own connections the server has closed or refused.

    scripts/slowloris.py 127.0.0.1:8093 "$SERVER_PID" [-n 5000] [--sources 1] [--hold 15]

--sources K spreads the connections over K loopback addresses (127.0.0.2 ...), so that
a per-address cap does not turn them away before the header deadline can. The client
needs N open files (ulimit -n).

Prints one line per sample (seconds, server fds, client connections still open), then
a JSON summary.
"""

import argparse
import json
import os
import select
import socket
import time


def server_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("addr", help="host:port")
    parser.add_argument("pid", type=int)
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--sources", type=int, default=1)
    parser.add_argument("--hold", type=float, default=15.0)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    host, port = args.addr.rsplit(":", 1)
    port = int(port)

    fds_before = server_fds(args.pid)
    opened = []
    failed = 0
    for i in range(args.n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if args.sources > 1:
            s.bind((f"127.0.0.{2 + i % args.sources}", 0))
        try:
            s.connect((host, port))
            s.sendall(b"GET /health HTTP/1.1\r\nHost: concord\r\nX-Slow: ")
        except OSError:
            failed += 1
            s.close()
            continue
        s.setblocking(False)
        opened.append(s)
    began = time.monotonic()
    print(f"opened {len(opened)} ({failed} failed); server fds before: {fds_before}")

    open_now = {s.fileno(): s for s in opened}
    poller = select.poll()
    for fd in open_now:
        poller.register(fd, select.POLLIN)
    answered = 0
    samples = []
    while True:
        t = time.monotonic() - began
        # A connection the server closed (EOF or reset), or answered, is done.
        for fd, _ in poller.poll(0):
            s = open_now.pop(fd)
            poller.unregister(fd)
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if data.startswith(b"HTTP/"):
                answered += 1
            s.close()
        fds = server_fds(args.pid)
        samples.append((round(t, 1), fds, len(open_now)))
        print(f"{t:6.1f} s  server fds {fds:6d}  client connections open {len(open_now):6d}")
        if t >= args.hold:
            break
        time.sleep(args.interval)

    print(
        json.dumps(
            {
                "connections": len(opened),
                "connect_failures": failed,
                "sources": args.sources,
                "server_fds_before": fds_before,
                "server_fds_peak": max(f for _, f, _ in samples),
                "server_fds_end": samples[-1][1],
                "answered_then_closed": answered,
                "still_open_at_end": samples[-1][2],
            }
        )
    )
    for s in open_now.values():
        s.close()


if __name__ == "__main__":
    main()
