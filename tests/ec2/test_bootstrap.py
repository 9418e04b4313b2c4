"""market-sync-bootstrap (the user-data's script) under stubs: it installs only the missing
packages, unpacks the settings bundle, runs setup, and at first boot signals CloudFormation
or — on failure — reports through SNS and leaves itself to run again at the next boot."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ec2.instance import layout
from ec2.instance.settings import BootSettings
from ec2.instance.userdata import boot_files
from tests.ec2.tools import require_tool, write_recording_stubs, write_stub, write_tree

BOOTSTRAP = resources.files("ec2.instance").joinpath("files/boot/market-sync-bootstrap")

STUBS = {
    "aws": r"""
case "$*" in
  *" s3 cp "*) src="" dst=""; for a in "$@"; do src="$dst"; dst="$a"; done
               cp "$FAKE_S3/${src#s3://}" "$dst" ;;
  *" sns publish "*) : ;;
  *" cloudformation signal-resource "*) : ;;
  *) echo "unexpected aws $*" >&2; exit 2 ;;
esac
""",
    "curl": r"""
case "$*" in
  *api/token*) echo token ;;
  *instance-id*) echo i-0abc ;;
esac
""",
    "dpkg-query": r"""
for p in $INSTALLED; do [ "$p" = "${!#}" ] && { printf 'install ok installed'; exit 0; }; done
exit 1
""",
    "apt-get": "exit 0\n",
}


@dataclass
class Instance:
    root: Path
    env: dict[str, str]
    calls: Path

    def boot(self, *args: str) -> tuple[int, list[str], str]:
        self.calls.write_text("")
        done = subprocess.run([require_tool("bash"), str(BOOTSTRAP), *args], env=self.env,
                              cwd=self.root.parent, capture_output=True, text=True,
                              check=False, timeout=60)
        return done.returncode, self.calls.read_text().splitlines(), done.stdout + done.stderr

    def bundle(self, setup_body: str) -> None:
        """The settings bundle in the fake S3, with a setup script that does ``setup_body``."""
        script = f"#!/bin/sh\necho \"setup $*\" >>\"$CALLS\"\n{setup_body}\n".encode()
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w:gz") as tar:
            info = tarfile.TarInfo(layout.SETUP_SCRIPT.lstrip("/"))
            info.size, info.mode = len(script), 0o755
            tar.addfile(info, io.BytesIO(script))
        target = Path(self.env["FAKE_S3"]) / "market-data-asha" / layout.SETTINGS_KEY
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(raw.getvalue())

    @property
    def done(self) -> bool:
        return (self.root / layout.SETUP_DONE.lstrip("/")).exists()


def make_instance(tmp_path: Path, installed: str = "") -> Instance:
    root, bin_dir = tmp_path / "root", tmp_path / "bin"
    boot = BootSettings(region="ap-south-1", bucket="market-data-asha", stack_name="asha",
                        distro="debian12", endpoint_url="http://127.0.0.1:5000",
                        sns_topic_arn="arn:aws:sns:ap-south-1:123456789012:asha-alerts")
    write_tree(root, ((item.path, item.content) for item in boot_files(boot)))
    calls = tmp_path / "calls.log"
    write_recording_stubs(bin_dir, STUBS, shell="/bin/bash")
    # the stubs and the few programs the script needs, nothing else (this machine may have
    # docker or aws of its own)
    tools = tmp_path / "tools"
    tools.mkdir()
    for program in ("bash", "sh", "tar", "gzip", "cat", "tee", "date", "mkdir", "tail", "cp",
                    "rm", "chmod"):
        found = shutil.which(program)
        assert found, program
        (tools / program).symlink_to(found)
    env = {"PATH": f"{bin_dir}:{tools}", "MARKET_SYNC_ROOT": str(root),
           "CALLS": str(calls), "FAKE_S3": str(tmp_path / "s3"), "INSTALLED": installed}
    return Instance(root, env, calls)


ALL = "docker.io python3.11 python3.11-venv git curl awscli logrotate ca-certificates"


def test_a_good_first_boot_needs_no_package_repository_and_signals_success(
        tmp_path: Path) -> None:
    instance = make_instance(tmp_path, installed=ALL)
    instance.bundle("exit 0")
    code, calls, output = instance.boot()
    assert code == 0, output
    assert not any(c.startswith("apt-get") for c in calls)  # all present: no internet
    assert "setup " in calls
    assert any("cloudformation signal-resource --stack-name asha --logical-resource-id "
               "Instance --unique-id i-0abc --status SUCCESS" in c for c in calls)
    assert all("--endpoint-url http://127.0.0.1:5000" in c for c in calls if c.startswith("aws"))
    assert instance.done


def test_missing_packages_are_installed_and_only_those(tmp_path: Path) -> None:
    instance = make_instance(tmp_path, installed="python3.11 python3.11-venv git curl "
                                                 "logrotate ca-certificates")
    instance.bundle("exit 0")
    code, calls, output = instance.boot()
    assert code == 0, output
    install = [c for c in calls if c.startswith("apt-get install")]
    assert install == ["apt-get install -y -q --no-install-recommends docker.io awscli"]


def test_docker_from_elsewhere_counts_as_installed(tmp_path: Path) -> None:
    instance = make_instance(tmp_path, installed=ALL.replace("docker.io ", ""))
    write_stub(Path(instance.env["PATH"].split(":")[0]) / "docker")  # docker-ce, say
    instance.bundle("exit 0")
    _, calls, _ = instance.boot()
    assert not any(c.startswith("apt-get") for c in calls)


def test_a_failed_first_boot_is_reported_and_retried_at_the_next_boot(tmp_path: Path) -> None:
    instance = make_instance(tmp_path, installed=ALL)
    instance.bundle("echo 'pulling images: no space left on device' >&2; exit 1")
    code, calls, output = instance.boot()
    assert code == 1
    assert not instance.done  # so the first-boot unit's condition holds at the next boot
    sns = [c for c in calls if " sns publish " in c]
    assert len(sns) == 1 and "--topic-arn arn:aws:sns:ap-south-1:123456789012:asha-alerts" \
        in sns[0]
    assert "no space left on device" in "\n".join(calls)  # the log's tail goes with it
    assert any("--status FAILURE" in c for c in calls)
    # the next boot: the problem is gone
    instance.bundle("exit 0")
    code, calls, output = instance.boot()
    assert code == 0, output
    assert instance.done and any("--status SUCCESS" in c for c in calls)


def test_an_update_runs_setup_without_signalling(tmp_path: Path) -> None:
    instance = make_instance(tmp_path, installed=ALL)
    instance.bundle("exit 0")
    code, calls, _ = instance.boot("--update")
    assert code == 0 and "setup " in calls
    assert not any("signal-resource" in c or "sns" in c for c in calls)
    instance.bundle("exit 3")
    code, _, _ = instance.boot("--update")
    assert code != 0
