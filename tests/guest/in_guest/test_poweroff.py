"""First thing on the boot after the guest was powered off in the middle of an apply
(poweroff.py): apply converges to the state an uninterrupted apply left, verifies, and
the next apply is a no-op."""

import json
from pathlib import Path

from crashkit import apply, diff, log, state

REFERENCE = Path("/var/lib/dl-test/poweroff-reference.json")


def test_apply_after_power_off_converges_to_the_reference():
    reference = json.loads(REFERENCE.read_text())
    before = state("povg", docker_state=False)
    log(f"after the power-off, differences from the reference: {diff(reference, before)}")
    r = apply("poweroff", "--no-restart")
    log(f"recovery apply:\n{r.stderr}")
    assert r.returncode == 0, r.stderr  # apply verifies before it exits 0
    assert diff(reference, state("povg", docker_state=False)) == []


def test_then_apply_changes_nothing():
    r = apply("poweroff", "--no-restart")
    assert r.returncode == 0 and "nothing changed" in r.stderr, r.stderr
