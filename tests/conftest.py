"""Fixtures with real parts: a throwaway PostgreSQL cluster and a moto server.

Missing PostgreSQL binaries are an error here, never a skip.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.devtools.motoserver import MotoServer, use_fake_credentials
from shared.devtools.pgcluster import PgCluster

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
_counter = itertools.count(1)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    with PgCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    use_fake_credentials()
    with MotoServer() as server:
        yield server


def _new_database(cluster: PgCluster, role: str) -> tuple[str, str]:
    name = f"{role}_{os.getpid()}_{next(_counter)}"
    return name, cluster.create_database(name)


@pytest.fixture
def instance_db(pg_cluster: PgCluster) -> Iterator[str]:
    """conninfo of a fresh, empty "instance" database (the market app's PostgreSQL)."""
    name, conninfo = _new_database(pg_cluster, "instance")
    yield conninfo
    pg_cluster.drop_database(name)


@pytest.fixture
def laptop_db(pg_cluster: PgCluster) -> Iterator[str]:
    """conninfo of a fresh, empty "laptop" database."""
    name, conninfo = _new_database(pg_cluster, "laptop")
    yield conninfo
    pg_cluster.drop_database(name)


@pytest.fixture
def bucket(moto_server: MotoServer) -> str:
    """A new, empty bucket on the moto server."""
    import boto3

    name = f"market-sync-test-{os.getpid()}-{next(_counter)}"
    s3 = boto3.client("s3", region_name="ap-south-1", endpoint_url=moto_server.endpoint_url)
    s3.create_bucket(Bucket=name,
                     CreateBucketConfiguration={"LocationConstraint": "ap-south-1"})
    return name


@pytest.fixture
def tmp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Config, cache and logs of this test under tmp_path (platformdirs honours XDG_*)."""
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_CACHE_HOME", "cache"),
                     ("XDG_STATE_HOME", "state")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.delenv("MARKET_SYNC_CONFIG", raising=False)
    return tmp_path
