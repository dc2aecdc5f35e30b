#!/usr/bin/env python3
"""The emulator's memory after pings for many distinct users, measured on the release binary.

    cargo build --release --all-features --bin pingpull
    python3 benches/emulator_memory.py [--users 400000] [--max-users 100000]

Starts the emulator on a port of 127.0.0.1 it picks, pings that many distinct users
through `pingpull ping`, then prints the emulator's resident memory (VmRSS and its peak,
VmHWM, from /proc; Linux only), what `GET /stats` says it kept and evicted, and the size
of one page of `GET /profiles`. Every process it starts gets only the variables it needs
and is stopped at the end.
"""

import argparse
import json
import subprocess
import urllib.request

from pingpull_process import (BINARY, NETWORK, environment, require_binary, start_emulator,
                              stop)


def memory_mb(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            fields[name] = value.strip()
    return tuple(int(fields[name].split()[0]) / 1024 for name in ("VmRSS", "VmHWM"))


def get(url):
    with urllib.request.urlopen(url, timeout=30) as answer:
        return answer.headers, answer.read()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=400_000)
    parser.add_argument("--max-users", type=int, default=100_000)
    args = parser.parse_args()
    require_binary()

    emulator, base_url = start_emulator("127.0.0.1:0", "--max-users", str(args.max_users))
    try:
        rss, _ = memory_mb(emulator.pid)
        print(f"emulator at start: {rss:.1f} MB")
        users = "".join(f"memory-user-{i}\n" for i in range(args.users))
        ping = subprocess.run(
            [BINARY, "ping", "--base-url", base_url, "--network", NETWORK, "--from-file", "-",
             "--concurrency", "32", "--deadline", "600"],
            input=users, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=environment(RUST_LOG="error"), text=True,
        )
        print(f"pingpull ping: exit status {ping.returncode} (0: every user delivered)")
        rss, peak = memory_mb(emulator.pid)
        _, stats = get(f"{base_url}/stats")
        headers, page = get(f"{base_url}/profiles?limit=100")
        print(f"emulator after {args.users} distinct users (max {args.max_users}): "
              f"{rss:.1f} MB resident, peak {peak:.1f} MB")
        print(f"GET /stats: {json.loads(stats)}")
        print(f"GET /profiles?limit=100: {len(json.loads(page))} profiles, {len(page)} bytes, "
              f"Next-Cursor {'present' if headers.get('Next-Cursor') else 'absent'}")
    finally:
        stop(emulator)


if __name__ == "__main__":
    main()
