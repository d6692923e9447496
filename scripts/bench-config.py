"""How a config far over the size cap is refused: time and peak memory (a benchmark
line, not a test; it asserts nothing).

A 10 MB config (real YAML, a regular file; then the same bytes through a pipe, which
has no size to check first) goes to `direct-lvm validate` in a fresh Python process;
that process reports the seconds main() took and its own peak RSS
(resource.getrusage(RUSAGE_SELF).ru_maxrss, which includes the interpreter and the
imports). Run with the project's venv: .venv/bin/python scripts/bench-config.py"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZE = 10 * 1000 * 1000
CHILD = r"""
import json, resource, sys, time
from direct_lvm.cli import main
t = time.monotonic()
rc = main(["validate", sys.argv[1]])
seconds = time.monotonic() - t
rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rc": rc, "seconds": seconds, "rss_mib": rss_kib / 1024}))
"""


def measure(path: str, stdin: bytes | None = None) -> dict[str, float]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, path], input=stdin, capture_output=True, check=False
    )
    wall = time.monotonic() - started
    out: dict[str, float] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    out["wall"] = wall
    out["stderr_bytes"] = len(proc.stderr)
    return out


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.yaml"
        line = b"  - /dev/disk/by-id/virtio-" + b"x" * 40 + b"\n"
        body = b"direct_lvm:\n  devices:\n" + line * (SIZE // len(line) + 1)
        big.write_bytes(body)
        results = {
            "file": measure(str(big)),
            "pipe": measure("/dev/stdin", stdin=body),
        }
    for name, r in results.items():
        print(
            f"bench-config: 10 MB config ({name}) refused with exit {r['rc']:.0f} in "
            f"{r['seconds']:.3f} s (process {r['wall']:.2f} s), peak RSS {r['rss_mib']:.1f} MiB, "
            f"{r['stderr_bytes']:.0f} bytes of error"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
