"""Run at the end of the crash boot (harness `after`): power the guest off at a random
point of an apply, for test_poweroff.py to re-run on the next boot of the same disks.

poweroff.yaml (its own VG on dl-b; the docker VG on dl-a and docker's storage are left
for the growth test, docker stopped cleanly first). An uninterrupted `apply --no-restart`
from the blank dl-b gives the reference state and the apply's duration (profile, vgcreate,
lvcreate, drop-in, daemon-reload). Then, from the same start, apply runs in the background
and the kernel powers off (sysrq 'o': no sync, no clean unmount) after a delay drawn from
a seeded generator over that duration. The seed and the delay are logged."""

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from crashkit import DISKS, DROPIN, ENV, RECORD, apply, cfg, sh, state

REFERENCE = Path("/var/lib/dl-test/poweroff-reference.json")
OUT = Path("/job/out/poweroff.json")
PROFILE = Path("/etc/lvm/profile/povg-thinpool.profile")


def reset(dropin: str, record: str, env: str | None) -> None:
    """dl-b blank, no povg, docker's drop-in, its storage options and the device record
    as the crash boot left them."""
    sh("vgremove -ff -y povg", check=False)
    b = os.path.realpath(DISKS[1])
    sh(["pvremove", "-ff", "-y", b], check=False)
    sh(["wipefs", "-a", b])
    PROFILE.unlink(missing_ok=True)
    Path(DROPIN).write_text(dropin)
    Path(RECORD).write_text(record)
    if env is None:
        Path(ENV).unlink(missing_ok=True)
    else:
        Path(ENV).write_text(env)
    sh("systemctl daemon-reload")


def main() -> None:
    seed = int(json.loads(os.environ.get("DL_FACTS", "{}")).get("poweroff_seed", 6))
    sh("systemctl stop docker.socket docker.service")
    dropin, record = Path(DROPIN).read_text(), Path(RECORD).read_text()
    env = Path(ENV).read_text() if Path(ENV).exists() else None
    reset(dropin, record, env)
    start = time.monotonic()
    r = apply("poweroff", "--no-restart")
    took = time.monotonic() - start
    if r.returncode != 0:
        sys.exit(f"reference apply failed:\n{r.stderr}")
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    REFERENCE.write_text(json.dumps(state("povg", docker_state=False)))
    reset(dropin, record, env)
    delay = random.Random(seed).uniform(0.05, 0.95) * took  # noqa: S311 (reproducible)
    record = {"seed": seed, "reference_apply_s": round(took, 2), "delay_s": round(delay, 2)}
    OUT.write_text(json.dumps(record))
    print(f"power-off: {record}", flush=True)
    sh("sync")
    Path("/proc/sys/kernel/sysrq").write_text("1")
    proc = subprocess.Popen(["direct-lvm", "apply", "--no-restart", cfg("poweroff")])
    time.sleep(delay)
    Path("/proc/sysrq-trigger").write_text("o")
    proc.wait()  # not reached
    sys.exit("still running after sysrq o")


if __name__ == "__main__":
    main()
