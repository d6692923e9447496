"""Shared by the boot-path in-guest suites (direct-lvm.service and the once-a-boot
record); not a test module."""

import json
import re

from cloudinit_helpers import wait_for

SERVICE = "direct-lvm.service"
RECORD = "/run/direct-lvm/boot.json"
STATE = "/var/tmp/dl-service-boot1.json"


def unit_props(host, unit, *props):
    out = host.check_output(f"systemctl show -p {','.join(props)} {unit}")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def wait_for_service_done(host):
    """direct-lvm.service has finished (it is ordered before multi-user.target, so it
    has, but poll rather than assume)."""
    return wait_for(
        lambda: (
            unit_props(host, SERVICE, "ActiveState")["ActiveState"]
            in ("active", "failed", "inactive")
        ),
        300,
        "direct-lvm.service to finish",
    )


def service_journal(host):
    return host.check_output(f"journalctl -b --no-pager -o cat -u {SERVICE}")


def changing_commands(text):
    """Commands that change something: run.py logs them at INFO as `+ argv`."""
    return [ln for ln in text.splitlines() if re.match(r"^(direct-lvm: )?\+ ", ln)]


def record(host):
    return json.loads(host.file(RECORD).content_string)


def docker_started_after_service(host):
    ours = int(unit_props(host, SERVICE, "ExecMainExitTimestampMonotonic")[
        "ExecMainExitTimestampMonotonic"])  # fmt: skip
    dk = unit_props(host, "docker.service", "ActiveEnterTimestampMonotonic",
                    "ExecMainStartTimestampMonotonic")  # fmt: skip
    assert ours > 0, "direct-lvm.service has no exit time: it did not run"
    assert int(dk["ExecMainStartTimestampMonotonic"]) > ours, (ours, dk)
    assert int(dk["ActiveEnterTimestampMonotonic"]) > ours, (ours, dk)
