"""One credential resolver (shared/credentials.py), from the trader's side: provision makes the
operator key and keeps no administrator key; every later command acts as the operator key and
says so; provision never falls back to it; AccessDenied names identity, action and remedy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.config import AwsConfig, load_config
from shared.credentials import IdentityKind, administrator_clients, laptop_clients
from shared.devtools.motoserver import MotoServer
from shared.errors import AwsError, UsageError
from shared.secrets import AwsKeys, SecretStore

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # moto: unsupported resources

ADMIN_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")


def test_every_command_acts_as_the_operator_key_provision_made(
        moto_server: MotoServer, agent_wheel: Path, tmp_path: Path, laptop_db: str,
        secrets: SecretStore, capsys: pytest.CaptureFixture[str]) -> None:
    from desktop.cli import main

    moto_server.reset()
    config = tmp_path / "config.toml"
    common = ["--config", str(config)]
    rc = main([*common, "provision", "--endpoint-url", moto_server.endpoint_url,
               "--email", "t@example.com", "--ip", "8.8.8.8", "--database", laptop_db,
               "--app-source", "https://github.com/example/app.git", "--wheel",
               str(agent_wheel), "--yes"])
    out, err = capsys.readouterr()
    assert rc == 0, out + err
    assert "AWS as the administrator key … (AWS_ACCESS_KEY_ID)" in err
    keys = secrets.aws_keys()
    assert keys is not None and keys.access_key_id != "testing"  # the operator's, not ours
    assert "testing" not in config.read_text()
    operator = f"the laptop's operator key {keys.access_key_id[:4]}…{keys.access_key_id[-4:]}"

    for command in (["status", "--json"], ["sync", "--json"], ["start", "--json"],
                    ["stop", "--json", "--force"]):
        rc = main([*common, *command])
        out, err = capsys.readouterr()
        assert f"market-sync: AWS as {operator} (OS keyring)" in err, (command, err)
        json.loads(out)  # stdout stays one JSON document
        assert rc in (0, 4), (command, out, err)


def test_the_workers_clients_are_the_same_operator_identity(secrets: SecretStore,
                                                            tmp_path: Path) -> None:
    from desktop.proc.worker import aws_clients
    from shared.config import parse_config

    secrets.set_aws_keys(AwsKeys("AKIAOPERATOROPERATOR", "operator-secret"))
    config = parse_config('[aws]\nbucket = "data-b"\n[database]\nconninfo = "dbname=x"\n',
                          tmp_path / "c.toml")
    clients = aws_clients(config)
    assert clients.identity is not None and clients.identity.kind is IdentityKind.OPERATOR
    credentials = clients.session.get_credentials()
    assert credentials is not None and credentials.access_key == "AKIAOPERATOROPERATOR"


def test_provision_never_falls_back_to_the_operator_key(
        moto_server: MotoServer, tmp_path: Path, secrets: SecretStore,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from desktop.cli import main

    for name in ADMIN_ENV:
        monkeypatch.delenv(name, raising=False)
    secrets.set_aws_keys(AwsKeys("AKIAOPERATOROPERATOR", "operator-secret"))
    for command in ("provision", "teardown", "deploy-agent"):
        rc = main(["--config", str(tmp_path / "c.toml"), command, "--endpoint-url",
                   moto_server.endpoint_url])
        err = capsys.readouterr().err
        assert rc == 2, err
        assert f"`{command}` needs administrator credentials" in err
        assert "--profile" in err and "never stored" in err and "Traceback" not in err


def test_explicit_admin_sources_in_order() -> None:
    aws = AwsConfig(region="ap-south-1", bucket="", profile="from-config")
    env = {"AWS_ACCESS_KEY_ID": "AKIAENVIRONMENT12345", "AWS_PROFILE": "p"}
    assert "'flag' (--profile)" in administrator_clients(aws, "flag", "x",
                                                         environ=env).identity.label  # type: ignore[union-attr]
    by_env = administrator_clients(aws, None, "x", environ=env)
    assert by_env.identity is not None and "AKIA…2345 (AWS_ACCESS_KEY_ID)" in by_env.identity.label
    assert by_env.config.profile is None  # never the config's profile
    with pytest.raises(UsageError):
        administrator_clients(aws, None, "provision", environ={})


def test_access_denied_names_the_identity_the_action_and_the_remedy(
        secrets: SecretStore) -> None:
    from botocore.stub import Stubber

    from desktop.engine.instance import InstanceController

    # moto's server does not evaluate our policies' conditions, so it cannot refuse the
    # operator key the way IAM would: the refusal itself is stubbed, the rest is real.
    secrets.set_aws_keys(AwsKeys("AKIAOPERATOROPERATOR", "operator-secret"))
    clients = laptop_clients(AwsConfig(region="ap-south-1", bucket="b"), secrets)
    ec2 = clients.ec2()
    with Stubber(ec2) as stub:
        stub.add_client_error("start_instances", "UnauthorizedOperation",
                              "You are not authorized to perform this operation.", 403)
        with pytest.raises(AwsError) as caught:
            InstanceController(ec2, "i-0123456789abcdef0").start(wait=False)
    error = caught.value
    assert error.message == ("AWS refused the laptop's operator key AKIA…ATOR (OS keyring) "
                             "permission to start instance i-0123456789abcdef0")
    assert "provision --profile" in error.hint
    assert "\n" not in error.message


def test_a_laptop_without_an_operator_key_says_what_it_uses(tmp_path: Path) -> None:
    aws = AwsConfig(region="ap-south-1", bucket="b")
    chain = laptop_clients(aws, None)
    assert chain.identity is not None and chain.identity.kind is IdentityKind.DEFAULT_CHAIN
    assert "no operator key" in chain.identity.label
    profile = laptop_clients(AwsConfig(region="ap-south-1", bucket="b", profile="p"), None)
    assert profile.identity is not None and "'p' from the config" in profile.identity.label


def test_provision_writes_the_stack_name_into_the_config(
        moto_server: MotoServer, agent_wheel: Path, tmp_path: Path, secrets: SecretStore,
        capsys: pytest.CaptureFixture[str]) -> None:
    from desktop.cli import main

    moto_server.reset()
    config = tmp_path / "config.toml"
    assert main(["--config", str(config), "provision", "--stack", "ms-two",
                 "--endpoint-url", moto_server.endpoint_url, "--email", "t@example.com",
                 "--ip", "8.8.8.8", "--app-source", "https://example.com/a.git",
                 "--wheel", str(agent_wheel), "--yes"]) == 0
    assert load_config(config).aws.stack == "ms-two"
    capsys.readouterr()
    # later commands take the stack from the config
    assert main(["--config", str(config), "teardown", "--yes"]) == 0
    assert "deleted the stack ms-two" in capsys.readouterr().out
