"""The frozen app talks to AWS over TLS: its Python's ssl runs on the one OpenSSL the package
keeps (psycopg_binary's; scripts/package points libssl.so.3/libcrypto.so.3 at it)."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlsplit

from desktop.demo.world import DemoWorld
from tests.package.conftest import PackagedApp
from tests.package.test_frozen_app import applied_dumps, run, trader_env


def self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def _pump(source: socket.socket, target: socket.socket) -> None:
    with suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    for sock in (source, target):  # one side is done: so is the exchange (HTTP)
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


@contextmanager
def tls_in_front_of(endpoint: str, cert: Path, key: Path) -> Iterator[tuple[str, list[str]]]:
    """An HTTPS endpoint on 127.0.0.1 that forwards to ``endpoint`` (moto), and the TLS
    versions of the connections it accepted."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    upstream = urlsplit(endpoint)
    listener = socket.create_server(("127.0.0.1", 0))
    handshakes: list[str] = []

    def serve() -> None:
        while True:
            try:
                raw, _ = listener.accept()
                client = context.wrap_socket(raw, server_side=True)
            except (OSError, ssl.SSLError):
                if listener.fileno() == -1:
                    return
                continue
            handshakes.append(str(client.version()))
            server = socket.create_connection((upstream.hostname, upstream.port))
            threading.Thread(target=_pump, args=(client, server), daemon=True).start()
            threading.Thread(target=_pump, args=(server, client), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}", handshakes
    finally:
        listener.close()


def test_sync_json_over_https_from_the_frozen_executable(
        packaged_app: PackagedApp, world: DemoWorld, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    with tls_in_front_of(world.endpoint_url, cert, key) as (https, handshakes):
        config = tmp_path / "laptop-https.toml"
        text = Path(world.laptop_config.path).read_text()
        assert world.endpoint_url in text
        config.write_text(text.replace(world.endpoint_url, https))
        env = {**trader_env(tmp_path), "AWS_CA_BUNDLE": str(cert)}
        done = run(packaged_app, "--config", str(config), "sync", "--json", env=env,
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [d["status"] for d in json.loads(done.stdout)["dumps"]] == ["applied", "applied"]
    assert len(applied_dumps(world)) == 2
    assert handshakes and set(handshakes) <= {"TLSv1.2", "TLSv1.3"}
