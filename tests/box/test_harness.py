"""The harness itself: a box boots only in a private network namespace, reaches the fake
IMDS inside it and moto on the host only through the forwarder, powers off with exit 0
and leaves nothing behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.devtools.motoserver import MotoServer
from tests.box.box import CGROUP_PARENT, REPO, RUN_ROOT, Box, BoxError, cgroup_roots, reap_stale
from tests.box.netns import IMDS_ADDRESS

USER_DATA = """#cloud-config
write_files:
  - path: /root/written-by-cloud-init
    content: "hello from the seed\\n"
"""


def metadata(moto: MotoServer) -> dict[str, object]:
    return {"instance_id": "i-0box0000000000001", "region": "ap-south-1",
            "tags": {"Name": "box"}, "moto": moto.endpoint_url}


def test_refuses_to_boot_on_the_host_network(new_box: Callable[[], Box]) -> None:
    box = new_box()
    box.seed(USER_DATA, "i-0box0000000000001")
    box.netns = "/proc/self/ns/net"
    with pytest.raises(BoxError, match="host's network namespace"):
        box.boot()
    assert box.nspawn is None  # nothing was started
    box.netns = ""
    with pytest.raises(BoxError, match="private network namespace"):
        box.boot()
    assert box.nspawn is None


def test_a_box_boots_in_its_own_network_and_leaves_nothing(
        new_box: Callable[[], Box], moto_server: MotoServer) -> None:
    box = new_box()
    box.seed(USER_DATA, "i-0box0000000000001")
    box.start_network(metadata(moto_server), [moto_server.port])
    box.boot()
    status = box.run(["cloud-init", "status", "--wait", "--long"], check=False, timeout=120)
    assert "status: done" in status.stdout, status.stdout + status.stderr
    assert box.run(["cat", "/root/written-by-cloud-init"]).stdout == "hello from the seed\n"

    # lo (holding 169.254.169.254) and Docker's own bridge, made inside; no route out.
    links = box.run(["ip", "-o", "link", "show"]).stdout
    assert {line.split(":")[1].strip() for line in links.splitlines()} <= {"lo", "docker0"}
    assert "default" not in box.run(["ip", "route", "show", "table", "all"]).stdout
    host_addresses = subprocess.run(["ip", "-o", "address"], capture_output=True, text=True,
                                    check=True).stdout
    assert IMDS_ADDRESS not in host_addresses

    # IMDSv2 inside: a token first, then the instance id and the role's credentials.
    token = box.run(["curl", "-sf", "-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60",
                     f"http://{IMDS_ADDRESS}/latest/api/token"]).stdout
    assert box.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                    f"http://{IMDS_ADDRESS}/latest/meta-data/instance-id"]).stdout == "401"
    got = box.run(["curl", "-sf", "-H", f"X-aws-ec2-metadata-token: {token}",
                   f"http://{IMDS_ADDRESS}/latest/meta-data/instance-id"]).stdout
    assert got == "i-0box0000000000001"

    # moto on the host's 127.0.0.1 through the forwarder, with the instance role's keys
    # from the IMDS (the AWS CLI's own credential chain).
    identity = box.run(["aws", "sts", "get-caller-identity", "--region", "ap-south-1",
                        "--endpoint-url", moto_server.endpoint_url, "--output", "json"])
    assert json.loads(identity.stdout)["Account"] == "123456789012"
    # ... and nothing else on the host: a port the forwarder does not forward is closed.
    closed = box.run(["curl", "-s", "-m", "3", "http://127.0.0.1:22/"], check=False)
    assert closed.returncode == 7  # could not connect

    assert box.poweroff() == 0
    for root in cgroup_roots():
        assert not (root / CGROUP_PARENT / box.name).exists()
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(box.run_dir) not in mounts
    assert "hello from the seed" in box.journal("-u", "cloud-final.service") or \
        "Cloud-init" in box.journal()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_an_interrupted_run_leaves_nothing_behind(box_rootfs: Path, tmp_path: Path,
                                                 how: signal.Signals) -> None:
    """`scripts/box boot` stopped (SIGTERM, as ^C or a CI timeout) or killed outright: the
    box, its network and its cgroups go; what a killed run leaves on disk is reaped."""
    user_data = tmp_path / "user-data"
    user_data.write_text(USER_DATA)
    runner = subprocess.Popen([sys.executable, "-m", "tests.box", "boot", str(user_data)],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    assert runner.stdout is not None
    line = runner.stdout.readline()
    assert " is up" in line, line + runner.stdout.read()
    name = line.split()[1]
    nspawn = _pids_with(f"--machine={name}")
    holder = _pids_with(f"run/{name}/imds.json")
    assert nspawn and holder
    runner.send_signal(how)
    runner.wait(60)
    deadline = time.monotonic() + 60
    while (_alive(nspawn) or _alive(holder)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _alive(nspawn) and not _alive(holder)
    if how == signal.SIGKILL:
        assert name in reap_stale()
    assert not (RUN_ROOT / name).exists()
    for root in cgroup_roots():
        assert not (root / CGROUP_PARENT / name).exists()
    assert name not in Path("/proc/self/mountinfo").read_text()


def _pids_with(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_text().replace("\0", " "):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def _alive(pids: list[int]) -> bool:
    """Any of ``pids`` still running (a zombie has ended)."""
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                return True
        except OSError:
            pass
    return False
