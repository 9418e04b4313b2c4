"""End to end against the moto server: provision (two passes), re-run, config, operator key,
deploy-agent, teardown; and the same through the `market-sync` command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ec2.instance.settings import InstanceSettings
from installer.agent import InstanceUpdater, deploy_agent, update_commands
from installer.provision import Provisioner, ProvisionProgress, ProvisionRequest, trader_cidr
from installer.teardown import Teardown
from shared.aws import AwsClients
from shared.config import load_config
from shared.devtools.motoserver import MotoServer
from shared.errors import UsageError
from shared.secrets import SecretStore

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # moto: unsupported resources


def _provision(clients: AwsClients, request: ProvisionRequest, config: Path, wheel: Path,
               secrets: SecretStore | None = None) -> tuple[list[ProvisionProgress], object]:
    from tests.fakes import MemoryKeyring

    secrets = secrets or SecretStore(MemoryKeyring())
    steps: list[ProvisionProgress] = []
    wheelhouse = config.parent / "wheelhouse"
    wheelhouse.mkdir(exist_ok=True)
    (wheelhouse / "boto3-1.35.0-py3-none-any.whl").write_bytes(b"a dependency")
    result = Provisioner(clients, request, config, secrets=secrets, wheel=wheel,
                         wheelhouse=wheelhouse, poll_seconds=0.01).run(steps.append)
    return steps, result


def test_provision_creates_everything_and_writes_the_config(
        clients: AwsClients, request_: ProvisionRequest, agent_wheel: Path,
        tmp_path: Path) -> None:
    config_path = tmp_path / "config.toml"
    steps, result = _provision(clients, request_, config_path, agent_wheel)
    assert result.changed  # type: ignore[attr-defined]
    phases = [s.phase for s in steps]
    assert phases.count("apply") == 2  # first pass, then the instance
    assert phases.index("artifacts") < len(phases) - 1 - phases[::-1].index("apply")
    assert any(s.event is not None for s in steps)

    config = load_config(config_path)
    assert config.aws.bucket == "market-sync-123456789012-ap-south-1"
    assert config.aws.instance_id and config.aws.instance_id.startswith("i-")
    assert config.aws.region == "ap-south-1"

    s3 = clients.s3()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=config.aws.bucket)["Contents"]]
    assert keys == ["artifacts/instance-settings.json", "artifacts/instance-settings.tar.gz",
                    "artifacts/market_sync-0.1.0-py3-none-any.whl",
                    "artifacts/wheels/boto3-1.35.0-py3-none-any.whl"]
    instance = clients.ec2().describe_instances(InstanceIds=[config.aws.instance_id])
    tags = {t["Key"]: t["Value"] for t in instance["Reservations"][0]["Instances"][0]["Tags"]}
    assert tags["market-sync:stack"] == "market-sync"


def test_rerun_changes_no_resource_and_keeps_the_config(
        clients: AwsClients, request_: ProvisionRequest, agent_wheel: Path,
        tmp_path: Path) -> None:
    config_path = tmp_path / "config.toml"
    _, first_result = _provision(clients, request_, config_path, agent_wheel)
    first = config_path.read_text()
    steps, result = _provision(clients, request_, config_path, agent_wheel)
    # moto forgets the parameters a change set set, so it offers an empty change set where
    # CloudFormation says "no changes" (that path: test_stack.py); either way nothing changes.
    assert result.changes == ()  # type: ignore[attr-defined]
    assert [s.phase for s in steps].count("plan") == 1  # no first pass: the instance exists
    assert result.instance_id == first_result.instance_id  # type: ignore[attr-defined]
    assert config_path.read_text() == first


def test_operator_key_goes_to_the_keyring_only(
        clients: AwsClients, request_: ProvisionRequest, agent_wheel: Path, tmp_path: Path,
        secrets: SecretStore) -> None:
    config_path = tmp_path / "config.toml"
    config_path.write_text('[aws]\nregion = "ap-south-1"\nbucket = "x"\nprofile = "admin"\n'
                           '[database]\nconninfo = "host=localhost dbname=market"\n')
    steps, result = _provision(clients, request_, config_path, agent_wheel, secrets)
    keys = secrets.aws_keys()
    assert keys is not None and result.operator_key_stored  # type: ignore[attr-defined]
    text = config_path.read_text()
    assert keys.secret_access_key not in text and keys.access_key_id not in text
    config = load_config(config_path)
    assert config.aws.profile is None  # the administrator's profile is not kept
    assert config.aws.stack == "market-sync"
    assert all(keys.secret_access_key not in s.message for s in steps)
    # the key in the keyring is the operator user's (moto's STS knows IAM's keys)
    import boto3

    sts = boto3.client("sts", region_name="ap-south-1", endpoint_url=clients.config.endpoint_url,
                       aws_access_key_id=keys.access_key_id,
                       aws_secret_access_key=keys.secret_access_key)
    assert sts.get_caller_identity()["Arn"].endswith(
        f":user/{result.operator_user}")  # type: ignore[attr-defined]
    # a lost key is replaced, and the orphan deleted (IAM allows two keys a user)
    secrets.delete_aws_keys()
    _provision(clients, request_, config_path, agent_wheel, secrets)
    again = secrets.aws_keys()
    assert again is not None and again != keys
    listed = clients.iam().list_access_keys(
        UserName=result.operator_user)["AccessKeyMetadata"]  # type: ignore[attr-defined]
    assert [k["AccessKeyId"] for k in listed] == [again.access_key_id]
    # teardown deletes the key (else CloudFormation cannot delete the user) and forgets it
    Teardown(clients, "market-sync", secrets=secrets, poll_seconds=0.01).run(delete_data=False)
    assert secrets.aws_keys() is None


def test_teardown_keeps_the_data_unless_asked(
        clients: AwsClients, request_: ProvisionRequest, agent_wheel: Path,
        tmp_path: Path) -> None:
    _provision(clients, request_, tmp_path / "config.toml", agent_wheel)
    s3 = clients.s3()
    bucket = "market-sync-123456789012-ap-south-1"
    s3.put_object(Bucket=bucket, Key="dumps/2026/11/24/x/manifest.json", Body=b"{}")
    s3.put_object(Bucket=bucket, Key="dumps/2026/11/24/x/manifest.json", Body=b"{ }")

    kept = Teardown(clients, "market-sync", poll_seconds=0.01).run(delete_data=False)
    assert kept.stack_deleted and not kept.bucket_deleted and kept.bucket == bucket
    assert s3.head_object(Bucket=bucket, Key="dumps/2026/11/24/x/manifest.json")

    listed = s3.list_object_versions(Bucket=bucket)
    versions = len(listed.get("Versions", [])) + len(listed.get("DeleteMarkers", []))
    gone = Teardown(clients, "market-sync", poll_seconds=0.01).run(delete_data=True,
                                                                   bucket=bucket)
    assert gone.bucket_deleted and gone.objects_deleted == versions >= 2
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_deploy_agent_uploads_and_runs_the_bootstrap_through_ssm(
        clients: AwsClients, request_: ProvisionRequest, agent_wheel: Path,
        tmp_path: Path) -> None:
    import dataclasses

    from installer.artifacts import read_settings

    _, result = _provision(clients, request_, tmp_path / "config.toml", agent_wheel)
    bucket, instance_id = result.bucket, result.instance_id  # type: ignore[attr-defined]
    before = read_settings(clients.s3(), bucket)
    assert before is not None and before.wheels == ("boto3-1.35.0-py3-none-any.whl",)

    def settings_for(key: str) -> InstanceSettings:
        assert before is not None
        return dataclasses.replace(before, agent_wheel_key=key, power_off_after_backup=False)

    deployed = deploy_agent(clients.s3(), InstanceUpdater(clients.ssm(), poll_seconds=0.01),
                            bucket, settings_for, instance_id, wheel=agent_wheel,
                            wheelhouse=tmp_path / "wheelhouse")
    assert deployed.command is not None and deployed.command.ok
    sent = clients.ssm().list_commands(CommandId=deployed.command.command_id)["Commands"][0]
    assert sent["DocumentName"] == "AWS-RunShellScript"
    assert sent["InstanceIds"] == [instance_id]
    assert sent["Parameters"]["commands"] == update_commands() == [
        "set -euo pipefail", "/usr/local/sbin/market-sync-bootstrap --update"]
    after = read_settings(clients.s3(), bucket)
    assert after is not None and after.power_off_after_backup is False
    assert after.wheels == before.wheels


def test_deploy_agent_refuses_during_the_apps_hours() -> None:
    import datetime as dt

    from installer.agent import refuse_during_app_hours
    from shared.calendar import IST
    from shared.errors import MarketHoursError

    with pytest.raises(MarketHoursError, match="--force"):
        refuse_during_app_hours(dt.datetime(2026, 11, 23, 10, 0, tzinfo=IST))  # Monday
    refuse_during_app_hours(dt.datetime(2026, 11, 23, 16, 0, tzinfo=IST))  # after the stop
    refuse_during_app_hours(dt.datetime(2026, 11, 24, 10, 0, tzinfo=IST))  # a holiday


def test_trader_address_must_be_one_public_ipv4() -> None:
    assert trader_cidr(" 49.36.10.20 ") == "49.36.10.20/32"
    assert trader_cidr("8.8.8.8/32") == "8.8.8.8/32"
    for bad in ("10.0.0.1", "127.0.0.1", "8.8.8.0/24", "203.0.113.7", "example.com", "::1"):
        with pytest.raises(UsageError):
            trader_cidr(bad)


# -- the command line ----------------------------------------------------------------------------
def test_cli_provision_then_teardown(moto_server: MotoServer, agent_wheel: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str],
                                     secrets: SecretStore) -> None:
    from desktop.cli import main

    moto_server.reset()
    config = tmp_path / "config.toml"
    common = ["--config", str(config)]
    aws = ["--endpoint-url", moto_server.endpoint_url, "--region", "ap-south-1"]
    rc = main([*common, "provision", *aws, "--email", "t@example.com", "--ip", "8.8.8.8",
               "--app-source", "https://github.com/example/app.git", "--wheel",
               str(agent_wheel), "--yes"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "Changes:" in out and "Add     Instance (AWS::EC2::Instance)" in out
    assert "CREATE_COMPLETE" in out
    assert load_config(config).aws.endpoint_url == moto_server.endpoint_url

    instance_id = load_config(config).aws.instance_id
    assert main([*common, "provision", "--wheel", str(agent_wheel), "--yes"]) == 0
    assert "Add " not in capsys.readouterr().out  # the re-run adds nothing
    assert load_config(config).aws.instance_id == instance_id

    assert main([*common, "provision", "--print-template", "--wheel", str(agent_wheel)]) == 0
    assert '"AWSTemplateFormatVersion"' in capsys.readouterr().out

    assert main([*common, "teardown", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "deleted the stack market-sync" in out and "kept the bucket" in out


def test_cli_teardown_needs_the_bucket_name_to_delete_data(
        moto_server: MotoServer, agent_wheel: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], secrets: SecretStore) -> None:
    from desktop.cli import main

    moto_server.reset()
    common = ["--config", str(tmp_path / "config.toml")]
    main([*common, "provision", "--endpoint-url", moto_server.endpoint_url, "--email",
          "t@example.com", "--ip", "8.8.8.8", "--app-source", "https://example.com/a.git",
          "--wheel", str(agent_wheel), "--yes"])
    capsys.readouterr()
    assert main([*common, "teardown", "--delete-data", "--confirm-bucket", "wrong"]) == 1
    assert "nothing was deleted" in capsys.readouterr().out
    bucket = "market-sync-123456789012-ap-south-1"
    assert main([*common, "teardown", "--delete-data", "--confirm-bucket", bucket]) == 0
    assert f"deleted the bucket {bucket}" in capsys.readouterr().out


def test_cli_provision_without_a_stack_asks_for_the_essentials(
        moto_server: MotoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        secrets: SecretStore) -> None:
    from desktop.cli import main

    moto_server.reset()
    rc = main(["--config", str(tmp_path / "c.toml"), "provision", "--endpoint-url",
               moto_server.endpoint_url])
    assert rc == 2
    assert "--email, --ip, --app-source" in capsys.readouterr().err


def test_provision_puts_a_budget_that_mails_the_trader_and_teardown_removes_it(
        clients: AwsClients, request_: ProvisionRequest, agent_wheel: Path,
        tmp_path: Path) -> None:
    from installer.cost import calendar_year, estimate
    from shared.calendar import TradingCalendar, today_ist

    steps, _ = _provision(clients, request_, tmp_path / "config.toml", agent_wheel)
    budgets = clients.budgets()
    budget = budgets.describe_budget(AccountId="123456789012",
                                     BudgetName="market-sync-market-sync")["Budget"]
    calendar = TradingCalendar.load()
    expected = estimate(request_.instance_type, calendar, calendar_year(calendar, today_ist()))
    limit = float(budget["BudgetLimit"]["Amount"])
    assert budget["TimeUnit"] == "MONTHLY" and budget["BudgetType"] == "COST"
    assert expected.total_usd * 1.5 <= limit < expected.total_usd * 1.5 + 1
    kinds = {n["NotificationType"] for n in budgets.describe_notifications_for_budget(
        AccountId="123456789012", BudgetName="market-sync-market-sync")["Notifications"]}
    assert kinds == {"ACTUAL", "FORECASTED"}
    assert any(s.phase == "budget" and "trader@example.com" in s.message for s in steps)

    _provision(clients, request_, tmp_path / "config.toml", agent_wheel)  # a re-run: one budget
    assert [b["BudgetName"] for b in budgets.describe_budgets(
        AccountId="123456789012")["Budgets"]] == ["market-sync-market-sync"]
    Teardown(clients, "market-sync", poll_seconds=0.01).run(delete_data=False)
    assert budgets.describe_budgets(AccountId="123456789012").get("Budgets", []) == []


def test_provision_pins_the_os_updates_to_the_newest_al2023_release(
        clients: AwsClients, request_: ProvisionRequest, agent_wheel: Path,
        tmp_path: Path) -> None:
    from ec2.osupdates import RELEASE, release_of_image

    steps, _ = _provision(clients, request_, tmp_path / "config.toml", agent_wheel)
    pin = clients.ssm().get_parameter(Name="/market-sync/market-sync/os-releasever",
                                      WithDecryption=True)["Parameter"]
    newest = clients.ssm().get_parameter(
        Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")
    image = clients.ec2().describe_images(ImageIds=[newest["Parameter"]["Value"]])["Images"][0]
    assert RELEASE.match(pin["Value"]) and pin["Value"] == release_of_image(image["Name"])
    assert pin["Type"] == "SecureString"
    assert any(s.phase == "os" and pin["Value"] in s.message for s in steps)
