"""Grep for secrets where AWS shows them to others: after a real provision (moto) with a
deploy token, an administrator key, the operator key and app secrets in play, none of them is
in the rendered user-data, the template, the stack's parameters, the instance's tags, the
config file, the command's output or the logs. The secrets themselves sit in the keyring and
in SSM as SecureString."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from shared.appsecrets import AppSecrets
from shared.aws import AwsClients
from shared.config import AwsConfig, load_config
from shared.devtools.motoserver import MotoServer
from shared.secrets import SecretStore

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # moto: unsupported resources

ADMIN_KEY_ID = "AKIAADMINISTRATOR001"
ADMIN_SECRET = "admin-SECRET-0b1f6c9e"
DEPLOY_TOKEN = "ghp_deployTOKEN7d2a41e5"
APP_SECRET = "kite-api-SECRET-93c0"


def test_no_secret_leaks_into_what_aws_or_the_laptop_shows(
        moto_server: MotoServer, agent_wheel: Path, tmp_path: Path, secrets: SecretStore,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    from desktop.cli import main

    moto_server.reset()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ADMIN_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ADMIN_SECRET)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    token_file = tmp_path / "token"
    token_file.write_text(DEPLOY_TOKEN + "\n")
    config_path = tmp_path / "config.toml"
    caplog.set_level(logging.DEBUG)
    rc = main(["--config", str(config_path), "-vv", "provision", "--endpoint-url",
               moto_server.endpoint_url, "--email", "t@example.com", "--ip", "8.8.8.8",
               "--app-source", "https://github.com/example/private-app.git",
               "--app-source-token-file", str(token_file), "--wheel", str(agent_wheel),
               "--yes"])
    out, err = capsys.readouterr()
    assert rc == 0, out + err
    operator = secrets.aws_keys()
    assert operator is not None
    config = load_config(config_path)
    clients = AwsClients(AwsConfig(region="ap-south-1", bucket="",
                                   endpoint_url=moto_server.endpoint_url))
    AppSecrets(clients.ssm(), "market-sync").put("KITE_API_SECRET", APP_SECRET)
    assert main(["--config", str(config_path), "-vv", "status", "--json"]) in (0, 1, 4)
    out2, err2 = capsys.readouterr()

    cfn = clients.cloudformation()
    stack = cfn.describe_stacks(StackName="market-sync")["Stacks"][0]
    template = cfn.get_template(StackName="market-sync")["TemplateBody"]
    template_text = template if isinstance(template, str) else json.dumps(template)
    instance = clients.ec2().describe_instances(InstanceIds=[config.aws.instance_id])[
        "Reservations"][0]["Instances"][0]
    user_data = clients.ec2().describe_instance_attribute(
        InstanceId=config.aws.instance_id, Attribute="userData")["UserData"].get("Value", "")
    import base64

    shown = {
        "template (with the user-data)": template_text,
        "user-data of the instance": base64.b64decode(user_data).decode() if user_data else "",
        "stack parameters": json.dumps(stack.get("Parameters", [])),
        "stack outputs": json.dumps(stack.get("Outputs", [])),
        "instance tags": json.dumps(instance.get("Tags", [])),
        "config.toml": config_path.read_text(),
        "command output": out + err + out2 + err2,
        "logs": caplog.text,
    }
    # the grep can hit: what is not secret is there to be seen
    assert "private-app.git" in shown["stack parameters"] + shown["instance tags"]
    assert shown["user-data of the instance"].startswith("#cloud-config")
    assert "UserData" in shown["template (with the user-data)"]
    for secret in (ADMIN_SECRET, ADMIN_KEY_ID, DEPLOY_TOKEN, APP_SECRET,
                   operator.secret_access_key, operator.access_key_id):
        for place, text in shown.items():
            assert secret not in text, f"{secret[:6]}… leaked into the {place}"

    ssm = clients.ssm()
    token = ssm.get_parameter(Name="/market-sync/market-sync/app-source-token",
                              WithDecryption=True)["Parameter"]
    assert token["Type"] == "SecureString" and token["Value"] == DEPLOY_TOKEN


def test_a_url_with_a_token_is_refused_before_anything_is_made(
        moto_server: MotoServer, tmp_path: Path, secrets: SecretStore,
        capsys: pytest.CaptureFixture[str]) -> None:
    from desktop.cli import main

    moto_server.reset()
    rc = main(["--config", str(tmp_path / "c.toml"), "provision", "--endpoint-url",
               moto_server.endpoint_url, "--email", "t@example.com", "--ip", "8.8.8.8",
               "--app-source", f"https://x-access-token:{DEPLOY_TOKEN}@github.com/me/app.git",
               "--yes"])
    err = capsys.readouterr().err
    assert rc == 2 and "carries credentials" in err and "--app-source-token-file" in err
    assert DEPLOY_TOKEN not in err
    clients = AwsClients(AwsConfig(region="ap-south-1", bucket="",
                                   endpoint_url=moto_server.endpoint_url))
    assert clients.cloudformation().list_stacks()["StackSummaries"] == []
