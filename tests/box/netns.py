"""The box's private network: one holder process per box.

``python -m tests.box.netns --state STATE.json --forward PORT…`` (root) makes a new
network namespace that has only ``lo``, and in it

* serves the fake instance-metadata service (tests/ec2/fake_imds.py, IMDSv2) on
  169.254.169.254:80, an address of that namespace's ``lo``, and
* listens on 127.0.0.1:PORT for each ``--forward PORT`` and forwards every connection
  to 127.0.0.1:PORT of the host's network (the moto server).

Then it returns to the host's namespace (only its own outgoing connections live
there) and prints ``ready PATH``: PATH names the new namespace for
``systemd-nspawn --network-namespace-path``. It exits when its stdin closes (the
harness, or the test that started it, went away), and the namespace with it.
Nothing here sends to 169.254.169.254 from the host's network: that address exists
only inside the new namespace.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path

from tests.ec2.fake_imds import FakeImds, imds_handler

IMDS_ADDRESS = "169.254.169.254"
CLONE_NEWNET = 0x40000000
ROLE = "market-sync-instance"
_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare_net() -> None:
    _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")


def setns(fd: int) -> None:
    _check(_libc.setns(fd, CLONE_NEWNET), "setns")


def same_namespace(a: str, b: str) -> bool:
    """Do the two nsfs paths name the same namespace?"""
    first, second = os.stat(a), os.stat(b)
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


@dataclass
class BoxImds(FakeImds):
    """The fake IMDS of a box: what it answers is read from a JSON state file at every
    request (the test changes it between boots), plus the instance role's credentials
    (moto accepts any). ``"moto"`` + ``"tags_from_moto": true`` serve the instance's
    tags as EC2 (moto) holds them, as the real service does."""

    state: Path = Path("/nonexistent")

    def values(self) -> dict[str, str]:
        state = json.loads(self.state.read_text())
        self.instance_id = state["instance_id"]
        tags = state.get("tags", {})
        if state.get("tags_from_moto"):
            tags = _moto_tags(state["moto"], state["region"], self.instance_id)
        self.tags = tags
        values = super().values()
        values["meta-data/placement/region"] = state["region"]
        values["meta-data/placement/availability-zone"] = state["region"] + "a"
        values["meta-data/iam/security-credentials/"] = ROLE
        values[f"meta-data/iam/security-credentials/{ROLE}"] = json.dumps({
            "Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": "testing",
            "SecretAccessKey": "testing", "Token": "testing",
            "Expiration": "2099-01-01T00:00:00Z", "LastUpdated": "2026-01-01T00:00:00Z"})
        values["dynamic/instance-identity/document"] = json.dumps({
            "instanceId": self.instance_id, "region": state["region"],
            "availabilityZone": state["region"] + "a"})
        return values


def _moto_tags(endpoint: str, region: str, instance_id: str) -> dict[str, str]:
    import boto3

    ec2 = boto3.client("ec2", region_name=region, endpoint_url=endpoint,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    found = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [instance_id]}])
    return {tag["Key"]: tag["Value"] for tag in found["Tags"]}


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock, how in ((target, socket.SHUT_WR), (source, socket.SHUT_RD)):
            try:
                sock.shutdown(how)
            except OSError:
                pass


def _forward(listener: socket.socket, port: int) -> None:
    """Accept inside the box's namespace, connect in the host's (this thread's) one."""
    while True:
        inside, _ = listener.accept()
        try:
            outside = socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError:
            inside.close()
            continue
        outside.settimeout(None)
        for a, b in ((inside, outside), (outside, inside)):
            threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.box.netns")
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--forward", type=int, action="append", default=[])
    args = parser.parse_args(argv)

    host = os.open("/proc/self/ns/net", os.O_RDONLY)
    unshare_net()
    box = os.open("/proc/self/ns/net", os.O_RDONLY)  # kept open: it names the namespace
    os.set_inheritable(box, False)
    _ip("link", "set", "lo", "up")
    _ip("address", "add", f"{IMDS_ADDRESS}/32", "dev", "lo")
    routes = subprocess.run(["ip", "route", "show", "table", "all"], check=True,
                            capture_output=True, text=True).stdout
    if any(line.startswith("default") for line in routes.splitlines()):
        raise SystemExit("the new network namespace has a default route")
    imds = BoxImds(state=args.state)
    server = ThreadingHTTPServer((IMDS_ADDRESS, 80), imds_handler(imds))
    listeners = []
    for port in args.forward:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        listeners.append((listener, port))
    setns(host)  # from here on, new sockets (the forwarder's connects) are the host's
    os.close(host)

    threading.Thread(target=server.serve_forever, daemon=True).start()
    for listener, port in listeners:
        threading.Thread(target=_forward, args=(listener, port), daemon=True).start()
    print(f"ready /proc/{os.getpid()}/fd/{box}", flush=True)
    sys.stdin.read()  # until the harness closes our stdin (or dies)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
