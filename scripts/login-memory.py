#!/usr/bin/env python3
"""Memory of a running Concord server under N concurrent logins (issue 16).

Starts nothing: give it the server's URL and pid. It registers one account (or logs
in to it if it exists), then fires N logins at once, each on its own connection,
while sampling the server's /proc/<pid>/status (VmRSS every 5 ms, VmHWM at the end).

    scripts/login-memory.py http://127.0.0.1:8093 "$SERVER_PID" [-n 128]

The server must let one address make N auth requests and N logins of one account at
once, or the rate limits answer most of them 429 before any hashing: run it with

    [limits]
    auth_per_ip = { per_second = 100000, burst = 100000 }
    rest_per_ip = { per_second = 100000, burst = 100000 }
    login_per_account = { per_minute = 100000, burst = 100000 }

Prints one JSON line: statuses, RSS before, peak RSS during, RSS after, VmHWM.
"""

import argparse
import collections
import http.client
import json
import threading
import time
import urllib.parse


def status_kib(pid, name):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return None


def post(url, path, body):
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=120)
    try:
        conn.request(
            "POST",
            path,
            body=json.dumps(body),
            headers={"content-type": "application/json"},
        )
        res = conn.getresponse()
        res.read()
        return res.status
    except OSError as err:
        return f"error: {err.__class__.__name__}"
    finally:
        conn.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("pid", type=int)
    parser.add_argument("-n", type=int, default=128, help="concurrent logins")
    parser.add_argument("--username", default="memory_probe")
    parser.add_argument("--password", default="q7-Lantern-Orbit-Fjord")
    args = parser.parse_args()

    account = {"username": args.username, "password": args.password}
    status = post(args.url, "/auth/register", account)
    if status not in (201, 409):
        raise SystemExit(f"registration answered {status}")

    before = status_kib(args.pid, "VmRSS")
    peak = before
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            rss = status_kib(args.pid, "VmRSS")
            if rss is not None and rss > peak:
                peak = rss
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    start = threading.Barrier(args.n)
    results = []
    lock = threading.Lock()

    def login():
        start.wait()
        status = post(args.url, "/auth/login", account)
        with lock:
            results.append(status)

    began = time.monotonic()
    threads = [threading.Thread(target=login) for _ in range(args.n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - began
    time.sleep(0.5)
    done.set()
    sampler.join()
    after = status_kib(args.pid, "VmRSS")
    print(
        json.dumps(
            {
                "logins": args.n,
                "statuses": dict(collections.Counter(map(str, results))),
                "seconds": round(took, 2),
                "rss_before_mib": round(before / 1024, 1),
                "rss_peak_mib": round(peak / 1024, 1),
                "rss_after_mib": round(after / 1024, 1),
                "vm_hwm_mib": round(status_kib(args.pid, "VmHWM") / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
