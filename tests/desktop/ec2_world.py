"""Test doubles for the instance side of the laptop: a moto-backed EC2 instance, a config
that names it, and a small HTTP server on 127.0.0.1 playing the market app."""

from __future__ import annotations

import datetime as dt
import http.server
import threading
import time
from pathlib import Path
from typing import Any

import boto3

from shared.calendar import IST
from shared.config import Config, parse_config

AMI = "ami-12c6146b"


def ec2_client(endpoint: str) -> Any:
    return boto3.client("ec2", region_name="ap-south-1", endpoint_url=endpoint)


def launch(ec2: Any, *, stopped: bool = False) -> str:
    """A new instance in moto (running, or stopped)."""
    response = ec2.run_instances(ImageId=AMI, InstanceType="t3.small", MinCount=1, MaxCount=1,
                                 TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                     {"Key": "Name", "Value": "market-sync-test"}]}])
    instance_id = str(response["Instances"][0]["InstanceId"])
    if stopped:
        ec2.stop_instances(InstanceIds=[instance_id])
    return instance_id


def tags(ec2: Any, instance_id: str) -> dict[str, str]:
    found = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [instance_id]}])
    return {t["Key"]: t["Value"] for t in found["Tags"]}


def at(day: str, hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hh, mm), IST)


def fixed(moment: dt.datetime) -> Any:
    return lambda: moment


def laptop_config(tmp: Path, *, endpoint: str, bucket: str, conninfo: str,
                  instance_id: str | None, health_url: str | None = None,
                  name: str = "laptop.toml") -> Config:
    text = f"""
[aws]
region = "ap-south-1"
endpoint_url = "{endpoint}"
bucket = "{bucket}"
{f'instance_id = "{instance_id}"' if instance_id else ""}

[database]
conninfo = "{conninfo}"

[[tables]]
name = "my_schema.ticks"
{f'[app]{chr(10)}health_url = "{health_url}"' if health_url else ""}
"""
    path = tmp / name
    path.write_text(text)
    return parse_config(text, path)


class AppServer:
    """The market app's HTTP side on 127.0.0.1: ``/ok`` 200, ``/fail`` 500, ``/slow`` late."""

    def __init__(self, slow_seconds: float = 2.0) -> None:
        self.requests = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                if self.path == "/slow":
                    time.sleep(slow_seconds)
                status = {"/ok": 200, "/health": 200, "/fail": 500, "/slow": 200}.get(self.path,
                                                                                     404)
                body = b'{"status": "ok"}' if status == 200 else b"boom"
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (the timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str = "/ok", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.httpd.server_address[1]}{path}"

    def __enter__(self) -> AppServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
