"""The instance's secrets from SSM (moto server) into root-only files, and the backup's
login to a PostgreSQL that demands a password (a throwaway cluster with scram-sha-256)."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ec2.cli import main
from ec2.instance_secrets import render_env, render_pgpass
from installer.artifacts import SecretText, put_app_source_token, put_database_password
from shared.aws import AwsClients
from shared.config import AwsConfig
from shared.devtools.motoserver import MotoServer
from shared.devtools.pgcluster import PgCluster
from shared.errors import ConfigError

PASSWORD = "s3cr:t\\pa ss"  # a colon and a backslash: pgpass must escape both


@pytest.fixture(scope="module")
def password_cluster() -> Iterator[PgCluster]:
    """Like the official postgres image: TCP needs a password; the socket trusts (setup)."""
    folder = Path(tempfile.mkdtemp(prefix="market-sync-hba-"))  # the server's user reads it
    hba = folder / "pg_hba.conf"
    hba.write_text("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
    folder.chmod(0o755)
    hba.chmod(0o644)
    with PgCluster(settings={"hba_file": str(hba)}) as cluster:
        assert cluster.root is not None
        with psycopg.connect(f"host={cluster.root} port={cluster.port} user=postgres "
                             "dbname=postgres", autocommit=True) as conn:
            conn.execute("SET password_encryption = 'scram-sha-256'")
            conn.execute(psycopg.sql.SQL("CREATE ROLE market LOGIN PASSWORD {}").format(
                psycopg.sql.Literal(PASSWORD)))
            conn.execute("CREATE DATABASE market OWNER market")
        yield cluster
    shutil.rmtree(folder)


def agent_toml(path: Path, moto: MotoServer, conninfo: str, stack: str = "asha") -> Path:
    path.write_text(f'[aws]\nregion = "ap-south-1"\nbucket = "data-b"\nendpoint_url = '
                    f'"{moto.endpoint_url}"\n[database]\nconninfo = "{conninfo}"\n'
                    f'[agent]\nssm_path = "/market-sync/{stack}"\n')
    return path


def clients(moto: MotoServer) -> AwsClients:
    return AwsClients(AwsConfig(region="ap-south-1", bucket="b",
                                endpoint_url=moto.endpoint_url))


def test_the_backup_logs_in_with_the_password_provision_stored(
        tmp_path: Path, moto_server: MotoServer, password_cluster: PgCluster,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    conninfo = f"host=127.0.0.1 port={password_cluster.port} dbname=market user=market"
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(conninfo).close()  # the official image's rule: no password, no login
    # provision (laptop side): the password file → SSM SecureString
    secret = tmp_path / "password.txt"
    secret.write_text(PASSWORD + "\n")
    name = put_database_password(clients(moto_server).ssm(), "asha",
                                 SecretText.from_file(secret))
    parameter = clients(moto_server).ssm().get_parameter(Name=name)["Parameter"]
    assert parameter["Type"] == "SecureString"
    # the instance, before the backup: SSM → a root-only pgpass
    pgpass = tmp_path / "run" / "pgpass"
    config = agent_toml(tmp_path / "agent.toml", moto_server, conninfo)
    assert main(["--config", str(config), "write-secrets", "pgpass", "--output",
                 str(pgpass)]) == 0
    assert stat.S_IMODE(pgpass.stat().st_mode) == 0o600
    assert PASSWORD not in capsys.readouterr().out
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    with psycopg.connect(conninfo) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("market",)


def test_no_password_in_ssm_means_no_pgpass(tmp_path: Path, moto_server: MotoServer) -> None:
    pgpass = tmp_path / "pgpass"
    pgpass.write_text("stale")
    config = agent_toml(tmp_path / "agent.toml", moto_server, "dbname=m user=u", stack="nopw")
    assert main(["--config", str(config), "write-secrets", "pgpass", "--output",
                 str(pgpass)]) == 0
    assert not pgpass.exists()


def test_the_apps_env_is_rendered_from_ssm_root_only(tmp_path: Path,
                                                    moto_server: MotoServer) -> None:
    ssm = clients(moto_server).ssm()
    for name, value in (("KITE_API_KEY", "k1"), ("KITE_ACCESS_TOKEN", "t$ok en")):
        ssm.put_parameter(Name=f"/market-sync/envtest/app-env/{name}", Value=value,
                          Type="SecureString", Overwrite=True)
    env = tmp_path / "app" / ".env"
    env.parent.mkdir()
    env.write_text("FROM_THE_TARBALL=1\n")
    config = agent_toml(tmp_path / "agent.toml", moto_server, "dbname=m", stack="envtest")
    assert main(["--config", str(config), "write-secrets", "app-env", "--output",
                 str(env)]) == 0
    assert env.read_text() == "KITE_ACCESS_TOKEN='t$ok en'\nKITE_API_KEY='k1'\n"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert os.stat(env).st_uid == os.getuid()


def test_without_app_secrets_in_ssm_the_apps_own_env_stays(tmp_path: Path,
                                                           moto_server: MotoServer) -> None:
    env = tmp_path / ".env"
    env.write_text("FROM_THE_TARBALL=1\n")
    config = agent_toml(tmp_path / "agent.toml", moto_server, "dbname=m", stack="empty")
    assert main(["--config", str(config), "write-secrets", "app-env", "--output",
                 str(env)]) == 0
    assert env.read_text() == "FROM_THE_TARBALL=1\n"
    none = tmp_path / "app" / ".env"  # an app without one: compose's env_file needs it
    assert main(["--config", str(config), "write-secrets", "app-env", "--output",
                 str(none)]) == 0
    assert none.read_text() == "" and stat.S_IMODE(none.stat().st_mode) == 0o600


def test_a_private_git_sources_token_becomes_a_credential_line(
        tmp_path: Path, moto_server: MotoServer) -> None:
    token = tmp_path / "token"
    token.write_text("ghp_abc/def\n")
    put_app_source_token(clients(moto_server).ssm(), "gittest",
                         SecretText.from_file(token, "token"))
    creds = tmp_path / "run" / "git-credentials"
    config = agent_toml(tmp_path / "agent.toml", moto_server, "dbname=m", stack="gittest")
    argv = ["--config", str(config), "write-secrets", "git-credentials", "--url",
            "https://github.com/trader/app.git", "--output", str(creds)]
    assert main(argv) == 0
    assert creds.read_text() == "https://x-access-token:ghp_abc%2Fdef@github.com\n"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    public = agent_toml(tmp_path / "public.toml", moto_server, "dbname=m", stack="public")
    assert main(["--config", str(public), *argv[2:]]) == 0
    assert not creds.exists()  # no token in SSM: a public repository, no file


def test_renderers_escape_or_refuse() -> None:
    assert render_pgpass("host=h dbname=d:b user=u", "p\\w:d") == "*:*:d\\:b:u:p\\\\w\\:d\n"
    assert render_pgpass("host=h user=u", "x") == "*:*:u:u:x\n"
    with pytest.raises(ConfigError, match="variable name"):
        render_env({"BAD-NAME": "x"})
    with pytest.raises(ConfigError, match="quote or a line break"):
        render_env({"A": "it's"})


def test_a_password_file_must_hold_one_line(tmp_path: Path) -> None:
    from shared.errors import UsageError

    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(UsageError, match="one non-empty line"):
        SecretText.from_file(empty)
    with pytest.raises(UsageError, match="cannot read"):
        SecretText.from_file(tmp_path / "missing")
    assert "hunter2" not in repr(SecretText("hunter2"))
