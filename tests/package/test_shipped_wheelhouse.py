"""The agent wheels the packaged app ships install on a fresh Python with no index, and the
agent they make calls every AWS service it uses (repacked botocore, installer/wheelprune.py)."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from installer.wheelprune import read_services
from shared.devtools.motoserver import FAKE_CREDENTIALS, MotoServer
from tests.package.conftest import ROOT, PackagedApp

# One cheap call per service the agent uses, made through the agent's own AwsClients.
AGENT_CALLS = """
import json, sys
import psycopg, zstandard
from shared.aws import AwsClients
from shared.config import AwsConfig

services, endpoint = json.loads(sys.argv[1]), sys.argv[2]
clients = AwsClients(AwsConfig(region="ap-south-1", bucket="unused", endpoint_url=endpoint))
calls = {"s3": lambda c: c.list_buckets(), "ec2": lambda c: c.describe_tags(),
         "ssm": lambda c: c.describe_parameters(), "sns": lambda c: c.list_topics(),
         "cloudwatch": lambda c: c.list_metrics()}
for service in services:
    client = getattr(clients, service)()
    calls[service](client)
try:
    clients.client("lambda")
    left_out = False
except Exception as exc:
    left_out = type(exc).__name__ == "UnknownServiceError"
data = b"market-sync " * 1000
assert zstandard.decompress(zstandard.compress(data)) == data
print(json.dumps({"called": services, "lambda_left_out": left_out,
                  "zstandard": zstandard.backend, "psycopg": psycopg.pq.__impl__}))
"""


def record_problems(wheel: Path) -> list[str]:
    """What in ``wheel`` disagrees with its RECORD (PEP 376/427: every file, hash and size)."""
    problems = []
    with zipfile.ZipFile(wheel) as archive:
        names = {n for n in archive.namelist() if not n.endswith("/")}  # not directories
        record_name = next(n for n in names if n.endswith(".dist-info/RECORD"))
        rows = list(csv.reader(io.StringIO(archive.read(record_name).decode())))
        listed = {row[0] for row in rows}
        problems += [f"not in RECORD: {n}" for n in sorted(names - listed)]
        problems += [f"listed, missing: {n}" for n in sorted(listed - names)]
        for path, digest, size in rows:
            if path == record_name or path not in names:
                continue
            data = archive.read(path)
            want = "sha256=" + base64.urlsafe_b64encode(
                hashlib.sha256(data).digest()).rstrip(b"=").decode()
            if (digest, size) != (want, str(len(data))):
                problems.append(f"wrong hash or size: {path}")
    return problems


def test_the_shipped_wheels_install_without_an_index_and_the_agent_reaches_its_services(
        packaged_app: PackagedApp, moto_server: MotoServer, tmp_path: Path) -> None:
    agent = packaged_app.folder / "_internal" / "agent"
    wheelhouse = agent / "wheels"
    (agent_wheel,) = agent.glob("market_sync-*.whl")
    (botocore,) = wheelhouse.glob("botocore-*.whl")
    (zstd,) = wheelhouse.glob("zstandard-*.whl")
    for wheel in (botocore, zstd):
        assert record_problems(wheel) == [], wheel.name
    assert botocore.stat().st_size < 4_000_000  # every service's model: ~17 MB
    with zipfile.ZipFile(zstd) as archive:
        assert not [n for n in archive.namelist() if "cffi" in n]

    # What the instance's setup script does (ec2/instance/files/scripts/market-sync-setup).
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    done = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-index", "--find-links", str(wheelhouse), str(agent_wheel)],
        capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    check = subprocess.run([python, "-m", "pip", "check"], capture_output=True, text=True,
                           timeout=120, check=False)
    assert check.returncode == 0, check.stdout

    services = sorted(read_services(ROOT / "packaging" / "instance-botocore-services.txt"))
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **FAKE_CREDENTIALS,
           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
           "AWS_EC2_METADATA_DISABLED": "true"}
    done = subprocess.run([python, "-c", AGENT_CALLS, json.dumps(services),
                           moto_server.endpoint_url], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"called": services, "lambda_left_out": True,
                                       "zstandard": "cext", "psycopg": "binary"}
