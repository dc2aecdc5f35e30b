#!/usr/bin/env python3
"""How `pingpull ping` rides out an outage of Livefyre, measured on the release binary.

    cargo build --release --all-features --bin pingpull
    python3 benches/outage.py [--users 2000] [--down-at 1] [--down-for 10]
                              [--latency-ms 20] [--concurrency 32]

Starts the emulator on a port of 127.0.0.1 it picks, pings the users through it, kills
the emulator `--down-at` seconds in and starts it again on the same port `--down-for`
seconds later. Reads the command's debug log (one line per delivery and per failed
attempt, each with its time) and prints: users delivered before the outage, requests
sent while the emulator was down, when delivery resumed after the restart, and when the
last user was delivered. The emulator answers each ping after `--latency-ms`, as a
remote Livefyre would, so that users are still waiting when it goes down.

Every process it starts gets only the variables it needs and is stopped at the end.
"""

import argparse
import datetime
import os
import re
import subprocess
import time

from pingpull_process import (BINARY, NETWORK, environment, require_binary, start_emulator,
                              stop)


def start_latent_emulator(listen, latency_ms):
    return start_emulator(listen, "--latency-ms", str(latency_ms))


def log_time(line):
    stamp = line.split(" ", 1)[0]
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--down-at", type=float, default=1.0)
    parser.add_argument("--down-for", type=float, default=10.0)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    require_binary()

    emulator, base_url = start_latent_emulator("127.0.0.1:0", args.latency_ms)
    listen = base_url.removeprefix("http://")
    users = "".join(f"outage-u{i}\n" for i in range(args.users))
    log_path = f"/tmp/pingpull-outage-{os.getpid()}.log"
    with open(log_path, "w") as log:
        ping = subprocess.Popen(
            [BINARY, "ping", "--base-url", base_url, "--network", NETWORK, "--from-file", "-",
             "--concurrency", str(args.concurrency), "--deadline", "120"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log,
            env=environment(RUST_LOG="pingpull=debug"), text=True,
        )
    try:
        started = time.time()
        ping.stdin.write(users)
        ping.stdin.close()
        time.sleep(max(0.0, started + args.down_at - time.time()))
        # Taken before the kill: the requests it cuts off count as failed during the outage.
        down = time.time()
        stop(emulator)
        time.sleep(max(0.0, down + args.down_for - time.time()))
        emulator, _ = start_latent_emulator(listen, args.latency_ms)
        up = time.time()
        status = ping.wait(timeout=180)
    finally:
        stop(ping)
        stop(emulator)

    delivered, failed_attempts = [], []
    with open(log_path) as log:
        lines = log.read().splitlines()
    os.remove(log_path)
    for line in lines:
        if not re.match(r"^\d{4}-\d\d-\d\dT", line):
            continue
        if re.search(r"pingpull::ping: delivered ", line):
            delivered.append(log_time(line))
        elif re.search(r"pingpull::ping: retrying ", line):
            failed_attempts.append(log_time(line))
    before = sum(1 for t in delivered if t < down)
    after = sorted(t for t in delivered if t >= up)
    during = sum(1 for t in failed_attempts if down <= t < up)
    # The requests in flight when the emulator went down fail at once; the rest are the
    # ones sent while it was down.
    per_second = [0] * (int(args.down_for) + 1)
    for t in failed_attempts:
        if down <= t < up:
            per_second[int(t - down)] += 1
    print(f"{args.users} users, concurrency {args.concurrency}, emulator latency {args.latency_ms} ms, "
          f"down at {args.down_at} s for {args.down_for} s; exit status {status}")
    print(f"delivered before the outage: {before}; delivered in all: {len(delivered)}")
    print(f"requests that failed while the emulator was down: {during}, "
          f"second by second: {per_second}")
    if after:
        print(f"first delivery {after[0] - up:.2f} s after the restart; "
              f"last {after[-1] - up:.2f} s after it ({len(after)} users)")
    print(f"stderr lines at debug: {len(lines)}")


if __name__ == "__main__":
    main()
