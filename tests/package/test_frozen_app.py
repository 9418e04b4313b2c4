"""The packaged app as a trader installs it: built by ``./scripts/package`` from a clean copy,
run under Xvfb with a StatusNotifier tray host on a private D-Bus session, with a home of
its own. Nothing here imports the app: every check goes through the frozen executable, its
tray icon and menu (as a panel sees them), the laptop database and S3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import boto3
import psycopg
import pytest

from desktop.demo.world import DemoWorld
from shared.devtools.motoserver import FAKE_CREDENTIALS, MotoServer
from shared.devtools.traysession import TraySession, tray_session, wait_for
from tests.package.conftest import ROOT, PackagedApp

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # moto: unsupported resources

VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
WIZARD_TITLE = "Set up market-sync on AWS"


def trader_env(home: Path, session: TraySession | None = None) -> dict[str, str]:
    """A trader's environment: a home of its own, no XDG overrides, no Python settings."""
    base = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
            **FAKE_CREDENTIALS}
    return session.environment(base) if session else base


def applied_dumps(world: DemoWorld) -> list[str]:
    with psycopg.connect(world.laptop_conninfo) as conn:
        exists = conn.execute("SELECT to_regclass('market_sync.applied_dumps')").fetchone()
        if not exists or exists[0] is None:
            return []
        return [r[0] for r in conn.execute(
            "SELECT dump_id FROM market_sync.applied_dumps ORDER BY dump_id")]


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


def run(app: PackagedApp, *args: str, env: dict[str, str], cwd: Path,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(app.executable), *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, check=False)


def viewable_windows(session: TraySession) -> list[str]:
    """The names of the mapped top-level windows on the session's display."""
    env = session.environment()
    tree = subprocess.run(["xwininfo", "-root", "-children"], env=env, capture_output=True,
                          text=True, check=True).stdout
    names = []
    for line in tree.splitlines():
        line = line.strip()
        if not line.startswith("0x") or '"' not in line:
            continue
        window, name = line.split(" ", 1)[0], line.split('"')[1]
        info = subprocess.run(["xwininfo", "-id", window], env=env, capture_output=True,
                              text=True, check=False).stdout
        if "Map State: IsViewable" in info:
            names.append(name)
    return names


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- the package --------------------------------------------------------------------------------
def test_the_tarball_is_a_relocatable_one_folder_app_with_menu_entry_and_agent_wheel(
        packaged_app: PackagedApp, tmp_path: Path) -> None:
    with tarfile.open(packaged_app.tarball) as tar:
        names = set(tar.getnames())
        tar.extractall(tmp_path / "opt", filter="data")
    for member in ("market-sync/market-sync", "market-sync/market-sync.desktop",
                   "market-sync/market-sync.png", "market-sync/install.sh"):
        assert member in names
    # Only the Qt the tray uses: no QML/Quick, WebEngine, PDF, or Qt's translations.
    assert not [n for n in names if any(unwanted in n for unwanted in (
        "Qt6Qml", "Qt6Quick", "WebEngine", "Qt6Pdf", "/translations/", ".qm"))]
    agent = "market-sync/_internal/agent/"
    wheels = [n for n in names if n.startswith(agent) and n.endswith(".whl")]
    assert [n for n in wheels if "/wheels/" not in n] == [
        f"{agent}market_sync-{VERSION}-py3-none-any.whl"]
    with zipfile.ZipFile(tmp_path / "opt" / agent / f"market_sync-{VERSION}-py3-none-any.whl"
                         ) as wheel:
        assert {"ec2/cli.py", "ec2/backup.py", "shared/dumpstore.py"} <= set(wheel.namelist())
    # ... and its dependencies, built for the instance (Linux x86_64, CPython 3.11).
    deps = {Path(n).name.split("-")[0].lower() for n in wheels if "/wheels/" in n}
    assert {"boto3", "botocore", "psycopg", "psycopg_binary", "zstandard"} <= deps
    assert any(n.endswith("manylinux_2_17_x86_64.whl") and "cp311" in n for n in wheels)

    # Moved elsewhere, it still runs; install.sh puts it into the applications menu.
    home = tmp_path / "home"
    home.mkdir()
    moved = tmp_path / "opt" / "market-sync"
    done = subprocess.run([str(moved / "market-sync"), "--version"], env=trader_env(home),
                          capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, f"market-sync {VERSION}")
    subprocess.run(["sh", str(moved / "install.sh")], env=trader_env(home), check=True,
                   capture_output=True)
    entry = (home / ".local/share/applications/market-sync.desktop").read_text()
    assert f'Exec="{moved}/market-sync"' in entry.splitlines()
    assert (home / ".local/share/icons/hicolor/256x256/apps/market-sync.png").is_file()


def test_version_and_sync_json_from_the_frozen_executable(
        packaged_app: PackagedApp, world: DemoWorld, tmp_path: Path) -> None:
    env = trader_env(tmp_path)
    config = str(world.laptop_config.path)
    done = run(packaged_app, "--version", env=env, cwd=tmp_path)
    assert (done.returncode, done.stdout.strip()) == (0, f"market-sync {VERSION}")

    done = run(packaged_app, "--config", config, "sync", "--json", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [d["status"] for d in report["dumps"]] == ["applied", "applied"]
    assert len(applied_dumps(world)) == 2
    assert (tmp_path / ".cache" / "market-sync" / "downloads").is_dir()  # not in the app

    done = run(packaged_app, "--config", str(tmp_path / "missing.toml"), "sync", "--json",
               env=env, cwd=tmp_path)
    assert done.returncode != 0 and "Traceback" not in done.stderr + done.stdout
    assert "error" in json.loads(done.stdout)

    done = run(packaged_app, "demo", "--headless", env=env, cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "the demo is not part of the installed app" in done.stderr


# -- the first run and the tray -------------------------------------------------------------------
def test_first_run_with_an_empty_home_opens_the_wizard(packaged_app: PackagedApp,
                                                       tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with tray_session() as session:
        # Opened without arguments, as a double-click or the menu entry opens it.
        app = subprocess.Popen([str(packaged_app.executable)], env=trader_env(home, session),
                               cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for("the first-run wizard's window", lambda: any(
                name.startswith(WIZARD_TITLE) for name in viewable_windows(session)), 60)
            assert app.poll() is None
        finally:
            stop(app)
    assert not (home / ".config" / "market-sync" / "config.toml").exists()


def test_tray_icon_appears_and_sync_now_runs_through_the_frozen_worker(
        packaged_app: PackagedApp, world: DemoWorld, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    before = snapshot(packaged_app.folder)
    config = str(world.laptop_config.path)
    with tray_session() as session:
        host = session.host
        assert host is not None
        env = trader_env(home, session)
        tray = subprocess.Popen([str(packaged_app.executable), "--config", config, "tray"],
                                env=env, cwd=home, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        try:
            host.wait_for_item(60)
            icon = host.item_properties()
            assert icon["Status"] == "Active" and icon["Id"] == "market-sync"
            assert any(w >= 16 and len(pixels) == 4 * w * h for w, h, pixels in icon["IconPixmap"])

            # The first status poll (a frozen worker) finds the two dumps.
            wait_for("the menu to show 2 pending dumps",
                     lambda: any(e.label == "Sync now (2 pending)" for e in host.menu()), 60)
            # A second launch hands over to the running tray and ends.
            second = subprocess.run([str(packaged_app.executable), "--config", config, "tray"],
                                    env=env, cwd=home, capture_output=True, timeout=60,
                                    check=False)
            assert second.returncode == 0 and len(host.registrations) == 1

            assert applied_dumps(world) == []
            host.click("Sync now")
            wait_for("the sync to finish", lambda: any(
                e.label.startswith("Last sync") and "2 dumps applied" in e.label
                for e in host.menu()), 120)
            assert len(applied_dumps(world)) == 2
            assert tray.poll() is None
        finally:
            stop(tray)
    log = home / ".local" / "state" / "market-sync" / "log" / "market-sync.log"
    assert "tray started" in log.read_text()
    assert snapshot(packaged_app.folder) == before  # nothing written into the installed app


# -- the agent wheel without --wheel ------------------------------------------------------------
def _artifacts(moto: MotoServer, bucket: str) -> dict[str, bytes]:
    s3 = boto3.client("s3", region_name="ap-south-1", endpoint_url=moto.endpoint_url)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="artifacts/")
            .get("Contents", [])]
    return {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def test_provision_and_deploy_agent_need_no_wheel_and_no_checkout(
        packaged_app: PackagedApp, moto_server: MotoServer, tmp_path: Path) -> None:
    moto_server.reset()
    home = tmp_path / "home"
    home.mkdir()
    config = home / "config.toml"
    aws = ["--endpoint-url", moto_server.endpoint_url, "--region", "ap-south-1"]
    with tray_session(with_tray_host=False, with_secret_service=True) as session:
        keyring = session.secrets
        assert keyring is not None
        done = run(packaged_app, "--config", str(config), "provision", *aws, "--email",
                   "t@example.com", "--ip", "8.8.8.8", "--app-source",
                   "https://github.com/example/app.git", "--yes",
                   env=trader_env(home, session), cwd=home, timeout=600)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        # The operator's access key went to the desktop's keyring through the keyring
        # backend bundled in the app (Secret Service), and nowhere else.
        stored = keyring.find(service="market-sync", username="aws-access-key-id")
        assert len(stored) == 1 and "is in the OS keyring" in done.stdout
        assert stored[0].secret.decode() not in config.read_text()
    from shared.config import load_config

    bucket = load_config(config).aws.bucket
    key = f"artifacts/market_sync-{VERSION}-py3-none-any.whl"
    shipped = next((packaged_app.folder / "_internal" / "agent").glob("*.whl"))
    uploaded = _artifacts(moto_server, bucket)
    assert uploaded[key] == shipped.read_bytes()
    # The instance's dependencies came from inside the package (a frozen app has no pip).
    for dependency in (packaged_app.folder / "_internal" / "agent" / "wheels").glob("*.whl"):
        assert uploaded[f"artifacts/wheels/{dependency.name}"] == dependency.read_bytes()

    # A pip-installed market-sync (no checkout next to it) rebuilds its own wheel.
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--disable-pip-version-check", "--target", str(site), str(shipped)],
                   check=True, capture_output=True)
    s3 = boto3.client("s3", region_name="ap-south-1", endpoint_url=moto_server.endpoint_url)
    s3.delete_object(Bucket=bucket, Key=key)
    env = {**os.environ, **FAKE_CREDENTIALS, "PYTHONPATH": str(site), "HOME": str(home)}
    wheelhouse = packaged_app.folder / "_internal" / "agent" / "wheels"
    done = subprocess.run([sys.executable, "-m", "desktop.cli", "--config", str(config),
                           "deploy-agent", "--upload-only", "--wheelhouse", str(wheelhouse)],
                          cwd=home, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    rebuilt = tmp_path / "rebuilt" / Path(key).name
    rebuilt.parent.mkdir()
    rebuilt.write_bytes(_artifacts(moto_server, bucket)[key])
    with zipfile.ZipFile(rebuilt) as new, zipfile.ZipFile(shipped) as old:
        assert sorted(new.namelist()) == sorted(old.namelist())
        assert all(new.read(n) == old.read(n) for n in old.namelist() if "RECORD" not in n)
    # ... and pip (as on the instance) installs it, checking every RECORD hash.
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--disable-pip-version-check", "--target", str(tmp_path / "instance"),
                    str(rebuilt)], check=True, capture_output=True)
    assert (tmp_path / "instance" / "ec2" / "cli.py").is_file()
