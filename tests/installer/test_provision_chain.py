"""The instance chain from the trader's side: `market-sync provision` against the moto
server, then what the instance would find — the user-data (`--print-user-data`, the exact
form the box boots), the settings bundle in S3 with the trader's tables, the database
password in SSM only — and that a re-provision never changes the user-data."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from ec2.instance import layout
from shared.aws import AwsClients
from shared.config import parse_config
from shared.devtools.motoserver import MotoServer

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # moto: unsupported resources

PASSWORD = "correct horse battery"
APP_DATABASE = "host=127.0.0.1 port=5432 dbname=market user=market"
TABLES = '''
[[tables]]
name = "market.ticks"
key = ["instrument_token", "exchange_timestamp"]

[[tables]]
name = "market.instruments"
mode = "snapshot"
'''


def laptop_config(path: Path, moto: MotoServer, tables: str = TABLES) -> Path:
    path.write_text(f'[aws]\nregion = "ap-south-1"\nbucket = ""\nendpoint_url = '
                    f'"{moto.endpoint_url}"\n\n[database]\nconninfo = "dbname=laptop"\n'
                    + tables)
    return path


def exact_form(config: Path, wheel: Path, password_file: Path) -> list[str]:
    """The issue's command line, word for word (the bucket named as provision names it)."""
    return ["--config", str(config), "provision", "--print-user-data", "--distro", "debian12",
            "--app-source", "s3://market-sync-123456789012-ap-south-1/artifacts/app.tar.gz",
            "--wheel", str(wheel), "--email", "trader@example.com", "--ip", "49.36.10.20",
            "--app-database", APP_DATABASE, "--app-database-password-file", str(password_file)]


def deployed_user_data(clients: AwsClients) -> str:
    body = clients.cloudformation().get_template(StackName="market-sync")["TemplateBody"]
    template: dict[str, Any] = body if isinstance(body, dict) else json.loads(body)
    user_data = template["Resources"]["Instance"]["Properties"]["UserData"]["Fn::Base64"]
    assert isinstance(user_data, str)
    return user_data


def bundle_agent_toml(clients: AwsClients, bucket: str) -> str:
    data = clients.s3().get_object(Bucket=bucket, Key=layout.SETTINGS_KEY)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        handle = tar.extractfile(layout.AGENT_TOML.lstrip("/"))
        assert handle is not None
        return handle.read().decode()


@dataclass(frozen=True)
class Provisioned:
    config: Path
    wheelhouse: Path
    argv: list[str]  # the provision command line (without --print-user-data)


def provision_debian(clients: AwsClients, moto: MotoServer, wheel: Path, tmp_path: Path,
                     capsys: pytest.CaptureFixture[str]) -> Provisioned:
    """`market-sync provision` in the exact form, for real, on a moto image."""
    from desktop.cli import main

    config = laptop_config(tmp_path / "config.toml", moto)
    secret = tmp_path / "db-password"
    secret.write_text(PASSWORD)
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir(exist_ok=True)
    image = clients.ec2().describe_images()["Images"][0]["ImageId"]
    argv = [a for a in exact_form(config, wheel, secret) if a != "--print-user-data"]
    assert main([*argv, "--image-id", image, "--wheelhouse", str(wheelhouse), "--yes"]) == 0
    capsys.readouterr()
    return Provisioned(config, wheelhouse, argv)


@pytest.fixture
def moto_clients(clients: AwsClients) -> AwsClients:
    return clients  # tests/installer/conftest.py: reset moto, pointed at it


def test_print_user_data_in_the_exact_form_is_what_provision_deploys(
        moto_clients: AwsClients, moto_server: MotoServer, agent_wheel: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from desktop.cli import main

    config = laptop_config(tmp_path / "config.toml", moto_server)
    secret = tmp_path / "db-password"
    secret.write_text(PASSWORD + "\n")
    argv = exact_form(config, agent_wheel, secret)
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert printed.out.startswith("#cloud-config\n")
    assert PASSWORD not in printed.out + printed.err
    assert yaml.safe_load(printed.out)["runcmd"][-1] == ["systemctl", "start",
                                                          layout.FIRSTBOOT_UNIT]
    # nothing was created by printing
    assert moto_clients.s3().list_buckets()["Buckets"] == []

    # the real provision with the same flags (and a moto image: no Debian AMIs in moto)
    image = moto_clients.ec2().describe_images()["Images"][0]["ImageId"]
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    (wheelhouse / "psycopg_binary-3.2.3-cp311-cp311-manylinux_2_17_x86_64.whl").write_bytes(b"x")
    real = [a for a in argv if a != "--print-user-data"]
    assert main([*real, "--image-id", image, "--wheelhouse", str(wheelhouse), "--yes"]) == 0
    out = capsys.readouterr().out
    assert PASSWORD not in out
    assert deployed_user_data(moto_clients) == printed.out

    bucket = "market-sync-123456789012-ap-south-1"
    # the password: SSM SecureString only
    parameter = moto_clients.ssm().get_parameter(
        Name="/market-sync/market-sync/agent/database-password", WithDecryption=True)
    assert parameter["Parameter"]["Type"] == "SecureString"
    assert parameter["Parameter"]["Value"] == PASSWORD
    body = moto_clients.cloudformation().get_template(StackName="market-sync")["TemplateBody"]
    assert PASSWORD not in json.dumps(body)
    for obj in moto_clients.s3().list_objects_v2(Bucket=bucket)["Contents"]:
        data = moto_clients.s3().get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
        assert PASSWORD.encode() not in data, obj["Key"]
    # the agent gets the trader's tables and the app database (no password)
    agent = parse_config(bundle_agent_toml(moto_clients, bucket), Path(layout.AGENT_TOML))
    assert [str(t.name) for t in agent.tables] == ["market.ticks", "market.instruments"]
    assert agent.database.conninfo == APP_DATABASE
    assert agent.aws.endpoint_url == moto_server.endpoint_url
    assert agent.agent.ssm_path == "/market-sync/market-sync"


def test_a_reprovision_with_a_new_version_and_new_tables_keeps_the_user_data(
        moto_clients: AwsClients, moto_server: MotoServer, agent_wheel: Path, tmp_path: Path,
        tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]) -> None:
    from desktop.cli import main

    done = provision_debian(moto_clients, moto_server, agent_wheel, tmp_path, capsys)
    config, wheelhouse, argv = done.config, done.wheelhouse, done.argv
    first = deployed_user_data(moto_clients)

    # a new market-sync (another wheel name) and a changed table set
    newer = tmp_path / "newer" / agent_wheel.name.replace("0.1.0", "0.2.0")
    newer.parent.mkdir()
    newer.write_bytes(agent_wheel.read_bytes())
    laptop_config(config, moto_server, TABLES.replace('mode = "snapshot"\n', "") +
                  '\n[[tables]]\nname = "market.orders"\n')
    argv = [a if a != str(agent_wheel) else str(newer) for a in argv]
    assert main([*argv, "--wheelhouse", str(wheelhouse), "--yes"]) == 0
    # UserData is what makes CloudFormation stop and start the instance; tags are not (moto
    # re-creates on any update, so the instance id cannot show it here)
    assert deployed_user_data(moto_clients) == first
    # what changed went to S3
    agent = parse_config(bundle_agent_toml(moto_clients, "market-sync-123456789012-ap-south-1"),
                         Path(layout.AGENT_TOML))
    assert [str(t.name) for t in agent.tables] == ["market.ticks", "market.instruments",
                                                   "market.orders"]


def test_a_private_git_sources_token_goes_to_ssm_only(
        moto_clients: AwsClients, moto_server: MotoServer, agent_wheel: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from desktop.cli import main

    config = laptop_config(tmp_path / "config.toml", moto_server)
    token = tmp_path / "token"
    token.write_text("ghp_secret123\n")
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    image = moto_clients.ec2().describe_images()["Images"][0]["ImageId"]
    assert main(["--config", str(config), "provision", "--email", "t@example.com", "--ip",
                 "49.36.10.20", "--app-source", "https://github.com/trader/app.git",
                 "--app-source-token-file", str(token), "--wheel", str(agent_wheel),
                 "--wheelhouse", str(wheelhouse), "--image-id", image, "--yes"]) == 0
    assert "ghp_secret123" not in "".join(capsys.readouterr())
    stored = moto_clients.ssm().get_parameter(Name="/market-sync/market-sync/app-source-token",
                                              WithDecryption=True)["Parameter"]
    assert stored["Type"] == "SecureString" and stored["Value"] == "ghp_secret123"
    body = moto_clients.cloudformation().get_template(StackName="market-sync")["TemplateBody"]
    assert "ghp_secret123" not in json.dumps(body)


def test_a_bad_password_file_is_one_clear_sentence(
        moto_clients: AwsClients, moto_server: MotoServer, agent_wheel: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from desktop.cli import main

    config = laptop_config(tmp_path / "config.toml", moto_server)
    assert main(exact_form(config, agent_wheel, tmp_path / "missing")) == 2
    err = capsys.readouterr().err
    assert "cannot read the password file" in err and "Traceback" not in err
    assert main([*exact_form(config, agent_wheel, tmp_path / "missing")[:-2],
                 "--app-database", APP_DATABASE + " password=x"]) == 2
    assert "contains a password" in capsys.readouterr().err


def test_the_debian_image_is_debians_newest(moto_clients: AwsClients) -> None:
    """moto cannot hold images owned by Debian's account: botocore's Stubber stands in."""
    from botocore.stub import Stubber

    from installer.images import DEBIAN_OWNER, current_image

    ec2, ssm = moto_clients.ec2(), moto_clients.ssm()
    with Stubber(ec2) as stub:
        stub.add_response("describe_images", {"Images": [
            {"ImageId": "ami-0aaaaaaaaaaaaaaaa", "CreationDate": "2026-09-01T00:00:00.000Z"},
            {"ImageId": "ami-0bbbbbbbbbbbbbbbb", "CreationDate": "2026-11-01T00:00:00.000Z"},
        ]}, {"Owners": [DEBIAN_OWNER], "Filters": [
            {"Name": "name", "Values": ["debian-12-amd64-*"]},
            {"Name": "architecture", "Values": ["x86_64"]},
            {"Name": "state", "Values": ["available"]}]})
        assert current_image(ssm, ec2, "debian12", "ap-south-1") == "ami-0bbbbbbbbbbbbbbbb"
    # Amazon Linux: the public parameter (moto has it)
    assert current_image(ssm, ec2, "al2023", "ap-south-1").startswith("ami-")



def test_deploy_agent_waits_for_the_apps_hours_to_end_unless_forced(
        moto_clients: AwsClients, moto_server: MotoServer, agent_wheel: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import datetime as dt

    import ec2.guard
    from desktop.cli import main
    from shared.calendar import IST

    done = provision_debian(moto_clients, moto_server, agent_wheel, tmp_path, capsys)
    config, wheelhouse = done.config, done.wheelhouse
    monkeypatch.setattr(ec2.guard, "now",
                        lambda: dt.datetime(2026, 11, 23, 11, 0, tzinfo=IST))  # a Monday
    deploy = ["--config", str(config), "deploy-agent", "--wheel", str(agent_wheel),
              "--wheelhouse", str(wheelhouse)]
    assert main(deploy) == 2
    err = capsys.readouterr().err
    assert "collecting now" in err and "--force" in err and "Traceback" not in err
    assert main([*deploy, "--upload-only"]) == 0  # never touches the instance
    capsys.readouterr()
    assert main([*deploy, "--force"]) == 0
    assert "is updated (Run Command" in capsys.readouterr().out
