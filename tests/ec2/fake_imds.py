"""A stand-in for EC2's instance metadata service on 127.0.0.1, speaking IMDSv2:
``PUT /latest/api/token`` gives a token; every GET without it is 401."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class FakeImds:
    instance_id: str = "i-0123456789abcdef0"
    tags: dict[str, str] | None = field(default_factory=dict)  # None: tags not in metadata
    tokens: set[str] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)
    url: str = ""

    def values(self) -> dict[str, str]:
        values = {"meta-data/instance-id": self.instance_id,
                  "meta-data/placement/region": "ap-south-1"}
        if self.tags is not None:
            values["meta-data/tags/instance"] = "\n".join(self.tags)
            for key, value in self.tags.items():
                values[f"meta-data/tags/instance/{key}"] = value
        return values


def imds_handler(imds: FakeImds) -> type[BaseHTTPRequestHandler]:
    """The request handler answering for ``imds`` (tests/box serves it in a netns)."""
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, body: str = "") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self) -> None:
            imds.requests.append(f"PUT {self.path}")
            if self.path != "/latest/api/token" or not self.headers.get(
                    "X-aws-ec2-metadata-token-ttl-seconds"):
                self._send(400)
                return
            token = secrets.token_hex(16)
            imds.tokens.add(token)
            self._send(200, token)

        def do_GET(self) -> None:
            imds.requests.append(f"GET {self.path}")
            if self.headers.get("X-aws-ec2-metadata-token") not in imds.tokens:
                self._send(401)
                return
            from urllib.parse import unquote

            value = imds.values().get(unquote(self.path.removeprefix("/latest/")))
            self._send(200, value) if value is not None else self._send(404)

    return Handler


@contextmanager
def running_imds(imds: FakeImds | None = None) -> Iterator[FakeImds]:
    imds = imds or FakeImds()
    server = ThreadingHTTPServer(("127.0.0.1", 0), imds_handler(imds))
    imds.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield imds
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
