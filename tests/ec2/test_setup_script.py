"""market-sync-setup (the script the bootstrap runs): shellcheck, and idempotence under stubs.

The script runs for real with bash against a sandbox root (MARKET_SYNC_ROOT); the
programs that would touch the machine or the network (aws, curl, systemctl, python3.11,
git, dpkg, docker, the CloudWatch agent) are stubs that record their calls and keep
state. The agent it installs is the real one (``python -m ec2.cli``): it renders the
compose override from what the docker stub says the app's services are.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import subprocess
import sys
import tarfile
from importlib import resources
from pathlib import Path

import pytest

from ec2.instance import layout
from ec2.instance.settings import InstanceSettings
from ec2.instance.userdata import instance_files
from tests.ec2.tools import REPO, require_tool, write_recording_stubs, write_stub, write_tree

SETUP = resources.files("ec2.instance").joinpath("files/scripts/market-sync-setup")
BOOTSTRAP = resources.files("ec2.instance").joinpath("files/boot/market-sync-bootstrap")
SCRIPTS = [Path(str(SETUP)), Path(str(BOOTSTRAP)), REPO / "scripts" / "fetch-test-tools"]

SETTINGS = InstanceSettings(
    region="ap-south-1", bucket="market-data-asha", prefix="",
    agent_wheel_key="artifacts/market_sync-0.1.0-py3-none-any.whl",
    app_source="s3://market-data-asha/artifacts/app.tar.gz",
    sns_topic_arn="arn:aws:sns:ap-south-1:123456789012:market-sync",
    wheels=("boto3-1.35.0-py3-none-any.whl",),
)
READ_ONLY = ("systemctl is-enabled", "systemctl is-active", "aws ", "docker compose version",
             "agent ",
             "docker compose --project-name market-app --project-directory",
             "git ls-remote", "docker image inspect")

STUBS = {
    "aws": r"""
src="" dst="" verb=""
for a in "$@"; do src="$dst"; dst="$a"; case "$a" in cp|sync) verb="$a" ;; esac; done
if [ "$verb" = sync ]; then
  mkdir -p "$dst"; [ -d "$FAKE_S3/${src#s3://}" ] && cp "$FAKE_S3/${src#s3://}"* "$dst"/
  exit 0
fi
cp "$FAKE_S3/${src#s3://}" "$dst"
""",
    "docker": r"""
case "$*" in
  "compose version --short")
    if [ -n "${FAKE_COMPOSE_VERSION:-}" ] \
      || [ -x "$MARKET_SYNC_ROOT/usr/local/lib/docker/cli-plugins/docker-compose" ]; then
      echo "${FAKE_COMPOSE_VERSION:-2.29.7}"
    fi ;;
  *" config --format json") echo '{"services": {"pg": {"image": "postgres:16"},
    "collector": {"build": {"context": "."}, "image": "market-app-collector"}}}' ;;
  *" config --images") printf 'postgres:16\nmarket-app-collector\n' ;;
esac
exit 0
""",
    "curl": r"""
out="" url=""
while [ $# -gt 0 ]; do
  case "$1" in --output) out="$2"; shift 2 ;; *) url="$1"; shift ;; esac
done
case "$url" in
  *.sha256) printf '%s' "${url%.sha256}" | sha256sum | sed 's/-$/docker-compose/' >"$out" ;;
  *) printf '%s' "$url" >"$out" ;;
esac
""",
    "python3.11": r"""
venv="$3"
mkdir -p "$venv/bin"
printf '#!/bin/sh\n' >"$venv/bin/python"
cat >"$venv/bin/pip" <<'PIP'
#!/bin/sh
echo "pip $*" >>"$CALLS"
agent="$(dirname "$0")/market-sync-agent"
# the real agent, but write-secrets (SSM: tests/ec2/test_instance_secrets.py) is recorded
cat >"$agent" <<AGENT
#!/bin/sh
case " \$* " in *" write-secrets "*)
  echo "agent \$*" >>"\$CALLS"
  out=""; prev=""
  for a in "\$@"; do [ "\$prev" = --output ] && out="\$a"; prev="\$a"; done
  case " \$* " in *" git-credentials "*)
    if [ -n "\${FAKE_GIT_TOKEN:-}" ]; then
      mkdir -p "\$(dirname "\$out")"; echo "https://x-access-token:tok@example.com" >"\$out"
    fi ;;
  esac
  exit 0 ;;
esac
cd "$REPO" && exec "$PYTHON" -m ec2.cli "\$@"
AGENT
chmod +x "$agent"
PIP
chmod +x "$venv/bin/python" "$venv/bin/pip"
""",
    "git": r"""
if case " $* " in *" ls-remote "*) true ;; *) false ;; esac; then
  printf '%s\trefs/heads/main\n' "${FAKE_GIT_COMMIT:-c0ffee1}"; exit 0
fi
for a in "$@"; do dest="$a"; done
mkdir -p "$dest/.git"; echo "services: {}" >"$dest/docker-compose.yml"
""",
    "dpkg": r"""
ctl="$MARKET_SYNC_ROOT/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl"
mkdir -p "$(dirname "$ctl")"; printf '#!/bin/sh\necho "cwctl $*" >>"$CALLS"\n' >"$ctl"
chmod +x "$ctl"
""",
    "systemctl": r"""
quiet=""; [ "$2" = "--quiet" ] && quiet=1
unit="${3:-$2}"
case "$1" in
  is-enabled) test -f "$SYSTEMD_STATE/enabled/$unit" ;;
  is-active) test -f "$SYSTEMD_STATE/active/$unit" ;;
  enable) mkdir -p "$SYSTEMD_STATE/enabled"; touch "$SYSTEMD_STATE/enabled/$2" ;;
  start|restart) mkdir -p "$SYSTEMD_STATE/active"; touch "$SYSTEMD_STATE/active/$2" ;;
  daemon-reload) ;;
  *) echo "unexpected systemctl $*" >&2; exit 2 ;;
esac
""",
}


def test_every_shell_script_passes_shellcheck() -> None:
    shellcheck = require_tool("shellcheck")
    done = subprocess.run([shellcheck, "--severity=style", *map(str, SCRIPTS)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_shellcheck_would_catch_a_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sh"
    bad.write_text("#!/bin/bash\nrm -rf $DIR/*\n")
    done = subprocess.run([require_tool("shellcheck"), str(bad)], capture_output=True,
                          text=True, check=False)
    assert done.returncode != 0 and "SC2086" in done.stdout


@dataclasses.dataclass
class Sandbox:
    root: Path
    env: dict[str, str]
    calls: Path
    s3: Path

    def run(self) -> tuple[list[str], list[str]]:
        """Run the setup script; (its "changed:" lines, the stubs' calls)."""
        self.calls.write_text("")
        done = subprocess.run([require_tool("bash"), str(SETUP)], env=self.env,
                              cwd=self.root.parent,  # a stray relative path stays in tmp
                              capture_output=True, text=True, check=False, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        changes = [line.split("changed: ", 1)[1] for line in done.stdout.splitlines()
                   if "changed: " in line]
        return changes, self.calls.read_text().splitlines()

    def put(self, key: str, data: bytes) -> None:
        path = self.s3 / "market-data-asha" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _app_tarball(version: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in (("market-app/docker-compose.yml", "services: {}\n"),
                           ("market-app/VERSION", version)):
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text.encode()))
    return buffer.getvalue()


def make_sandbox(tmp_path: Path, settings: InstanceSettings) -> Sandbox:
    root, bin_dir, s3 = tmp_path / "root", tmp_path / "bin", tmp_path / "s3"
    write_tree(root, ((item.path, item.content) for item in instance_files(settings)))
    calls = tmp_path / "calls.log"
    write_recording_stubs(bin_dir, STUBS)
    if settings.distro == "al2023":  # the package brings the CloudWatch agent
        write_stub(root / "opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl",
                   'echo "cwctl $*" >>"$CALLS"\n')
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "MARKET_SYNC_ROOT": str(root),
           "CALLS": str(calls), "FAKE_S3": str(s3), "SYSTEMD_STATE": str(tmp_path / "systemd"),
           "REPO": str(REPO), "PYTHON": sys.executable, "FAKE_COMPOSE_VERSION": "2.29.7"}
    box = Sandbox(root, env, calls, s3)
    box.put(settings.agent_wheel_key, b"wheel v1")
    box.put("artifacts/wheels/boto3-1.35.0-py3-none-any.whl", b"a dependency")
    box.put("artifacts/app.tar.gz", _app_tarball("1"))
    return box


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "var/cache" not in str(p)}


def _mutating(calls: list[str]) -> list[str]:
    return [c for c in calls if not c.startswith(READ_ONLY)]


@pytest.mark.parametrize("distro", ["al2023", "ubuntu2204", "debian12"])
def test_first_run_installs_everything(tmp_path: Path, distro: str) -> None:
    box = make_sandbox(tmp_path, dataclasses.replace(SETTINGS, distro=distro))
    changes, calls = box.run()
    root = box.root
    assert (root / layout.AGENT.lstrip("/")).exists()
    assert any(c.startswith("pip install") and "--no-index --find-links" in c
               and c.endswith("/market_sync-0.1.0-py3-none-any.whl") for c in calls)
    assert (root / "var/cache/market-sync/wheels/boto3-1.35.0-py3-none-any.whl").exists()
    assert (root / "opt/market-app/docker-compose.yml").exists(), "the tarball's top dir is lifted"
    assert (root / "opt/market-app/VERSION").read_text() == "1"
    assert "systemctl enable market-sync-guard.service" in calls
    assert "systemctl enable market-sync-guard-periodic.timer" in calls
    assert "systemctl start market-sync-backup.timer" in calls
    assert "systemctl start market-sync-guard.service" not in calls, "the guard waits for a boot"
    assert "cwctl -a fetch-config -m ec2 -s -c file:/etc/market-sync/cloudwatch-agent.json" in calls
    assert "market app from s3://market-data-asha/artifacts/app.tar.gz" in changes
    assert ("amazon-cloudwatch-agent" in changes) == (distro != "al2023")
    # compose v2 is there: nothing downloaded from GitHub
    assert not (root / "usr/local/lib/docker/cli-plugins/docker-compose").exists()
    assert not any("github.com" in c for c in calls)


def test_the_override_is_built_from_the_apps_real_services_and_images_are_made(
        tmp_path: Path) -> None:
    box = make_sandbox(tmp_path, SETTINGS)
    changes, calls = box.run()
    override = (box.root / layout.COMPOSE_OVERRIDE.lstrip("/")).read_text()
    assert '"pg":' in override and '"collector":' in override
    assert '"postgres":' not in override and '"api":' not in override
    assert (box.root / layout.COMPOSE_ENV.lstrip("/")).read_text() == "POSTGRES_SERVICE=pg\n"
    build = [c for c in calls if c.startswith("docker compose") and c.endswith(" build")]
    pull = [c for c in calls if " pull --ignore-buildable" in c]
    assert len(build) == 1 and len(pull) == 1
    assert f"--file {box.root}{layout.COMPOSE_OVERRIDE}" in build[0]
    assert "the app's images built and pulled" in changes
    assert calls.index(build[0]) < calls.index("systemctl start market-sync-app-start.timer")
    env = [i for i, c in enumerate(calls) if " write-secrets app-env --output " in c]
    assert env and env[0] < calls.index(build[0])  # the app's .env before compose reads it


def test_without_compose_v2_the_plugin_is_fetched_once(tmp_path: Path) -> None:
    box = make_sandbox(tmp_path, SETTINGS)
    box.env["FAKE_COMPOSE_VERSION"] = ""
    changes, calls = box.run()
    plugin = box.root / "usr/local/lib/docker/cli-plugins/docker-compose"
    assert plugin.stat().st_mode & 0o111
    assert "docker compose plugin v2.29.7" in changes
    changes, calls = box.run()
    assert changes == [] and not any(c.startswith("curl") for c in calls)


@pytest.mark.parametrize("distro", ["ubuntu2204", "debian12"])
def test_with_an_endpoint_every_aws_call_uses_it_and_nothing_needs_the_internet(
        tmp_path: Path, distro: str) -> None:
    settings = dataclasses.replace(SETTINGS, distro=distro, endpoint_url="http://127.0.0.1:5000")
    box = make_sandbox(tmp_path, settings)
    _, calls = box.run()
    aws = [c for c in calls if c.startswith("aws ")]
    assert aws and all(c.startswith("aws --region ap-south-1 --endpoint-url "
                                    "http://127.0.0.1:5000 ") for c in aws)
    assert not any(c.startswith(("curl", "dpkg", "cwctl")) for c in calls)


@pytest.mark.parametrize("distro", ["al2023", "ubuntu2204"])
def test_a_second_run_changes_nothing(tmp_path: Path, distro: str) -> None:
    box = make_sandbox(tmp_path, dataclasses.replace(SETTINGS, distro=distro))
    box.run()
    before = _tree(box.root)
    changes, calls = box.run()
    assert changes == []
    assert _mutating(calls) == []
    assert _tree(box.root) == before


def test_a_new_wheel_or_app_is_installed_and_nothing_else(tmp_path: Path) -> None:
    box = make_sandbox(tmp_path, SETTINGS)
    box.run()
    (box.root / "opt/market-app/.env").write_text("KITE_API_KEY=kept\n")
    box.put(SETTINGS.agent_wheel_key, b"wheel v2")
    box.put("artifacts/app.tar.gz", _app_tarball("2"))
    changes, calls = box.run()
    assert changes == ["market-sync agent from market_sync-0.1.0-py3-none-any.whl",
                       "market app from s3://market-data-asha/artifacts/app.tar.gz",
                       "the app's images built and pulled"]
    assert [c for c in _mutating(calls) if not c.startswith(("pip ", "docker compose"))] == []
    assert (box.root / "opt/market-app/VERSION").read_text() == "2"
    assert (box.root / "opt/market-app/.env").read_text() == "KITE_API_KEY=kept\n"


def test_a_git_app_source_is_cloned_once_per_commit_and_rebuilt(tmp_path: Path) -> None:
    settings = dataclasses.replace(SETTINGS, app_source="https://example.com/trader/app.git",
                                   app_git_ref="v1.2")
    box = make_sandbox(tmp_path, settings)
    _, calls = box.run()
    assert any(c.startswith("git clone --quiet --depth 1 --branch v1.2 https://example.com/")
               for c in calls)
    changes, calls = box.run()
    assert changes == [] and _mutating(calls) == []
    box.env["FAKE_GIT_COMMIT"] = "beef2"  # a new commit on the branch
    changes, calls = box.run()
    assert changes == ["market app from https://example.com/trader/app.git",
                       "the app's images built and pulled"]


def test_a_private_git_source_is_read_with_the_deploy_token_and_the_token_not_kept(
        tmp_path: Path) -> None:
    settings = dataclasses.replace(SETTINGS, app_source="https://example.com/trader/app.git")
    box = make_sandbox(tmp_path, settings)
    box.env["FAKE_GIT_TOKEN"] = "1"
    _, calls = box.run()
    creds = f"{box.root}/run/market-sync/git-credentials"
    helper = f"git -c credential.helper=store --file={creds} "
    assert any(c.startswith(helper + "ls-remote https://example.com/") for c in calls)
    assert any(c.startswith(helper + "clone --quiet --depth 1 https://example.com/")
               for c in calls)
    assert not Path(creds).exists()


def test_an_app_update_restarts_a_running_app_on_its_new_images(tmp_path: Path) -> None:
    box = make_sandbox(tmp_path, SETTINGS)
    box.run()
    (Path(box.env["SYSTEMD_STATE"]) / "active" / "market-sync-app.service").touch()
    box.put("artifacts/app.tar.gz", _app_tarball("2"))
    changes, calls = box.run()
    assert "the app restarted on its new images" in changes
    assert "systemctl restart market-sync-app.service" in calls


def test_a_changed_docker_daemon_json_restarts_docker(tmp_path: Path) -> None:
    box = make_sandbox(tmp_path, SETTINGS)
    box.run()
    daemon = box.root / "etc/docker/daemon.json"
    daemon.write_text(daemon.read_text().replace('"5"', '"6"'))
    changes, calls = box.run()
    assert changes == ["docker restarted for /etc/docker/daemon.json"]
    assert _mutating(calls) == ["systemctl restart docker.service"]
