"""What the benchmark scripts share: the release `pingpull` binary, the environment each
process they start gets (only what it needs), and the emulator on a port of 127.0.0.1."""

import os
import subprocess
import sys

NETWORK = "example.fyre.co"
KEY = "bench-script-key"
BINARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release",
                      "pingpull")


def require_binary():
    if not os.path.exists(BINARY):
        sys.exit("build the binary first: cargo build --release --all-features --bin pingpull")


def environment(**extra):
    """PATH and the network key, plus `extra`: nothing else of the caller's environment."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PINGPULL_KEY": KEY}
    env.update(extra)
    return env


def start_emulator(listen, *flags):
    """Starts `pingpull emulator` on `listen` (port 0: one it picks); returns the process
    and its base URL, which it prints first."""
    emulator = subprocess.Popen(
        [BINARY, "emulator", "--listen", listen, "--network", NETWORK, *flags],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=environment(RUST_LOG="error"),
        text=True,
    )
    base_url = emulator.stdout.readline().strip()
    if not base_url.startswith("http://"):
        stop(emulator)
        sys.exit(f"the emulator did not start: {base_url!r}")
    return emulator, base_url


def stop(process):
    if process.poll() is None:
        process.kill()
    process.wait()
