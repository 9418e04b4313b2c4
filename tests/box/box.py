"""One box: a Debian 12 system container booted by ``systemd-nspawn`` from the cached
rootfs (an overlay per box, so the cache stays pristine), in a private network
namespace made by :mod:`tests.box.netns`, fed its user-data through cloud-init's
NoCloud seed.

The box's disk (the overlay's upper directory and /var/lib/docker) survives a
power-off, so the same box can boot again (:meth:`Box.boot` a second time) as an
instance that was stopped and started. :meth:`Box.destroy` ends every process it
started, removes its cgroups and its files; it is safe to call twice and after any
failure. ``../shared/INSTANCE-BOX.md`` records why each nspawn option is there.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.box.netns import same_namespace

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RUN_ROOT = REPO / ".cache" / "box" / "run"
LOG_ROOT = REPO / ".cache" / "box" / "logs"
CGROUP_ROOTS = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup/systemd"))
CGROUP_PARENT = "market-sync-box"
BOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PR_SET_PDEATHSIG = 1


class BoxError(Exception):
    """The box could not be made, booted or reached."""


def cgroup_roots() -> list[Path]:
    """Where nspawn with --keep-unit puts the box's processes on this host: both the
    cgroup2 hierarchy and the name=systemd one (hybrid), or cgroup2 alone."""
    roots = [root for root in CGROUP_ROOTS if (root / "cgroup.procs").exists()]
    if not roots and Path("/sys/fs/cgroup/cgroup.procs").exists():
        roots = [Path("/sys/fs/cgroup")]
    if not roots:
        raise BoxError("no writable cgroup hierarchy under /sys/fs/cgroup")
    return roots


def _remove_cgroup(path: Path) -> None:
    if not path.is_dir():
        return
    kill = path / "cgroup.kill"
    if kill.exists():
        with contextlib.suppress(OSError):
            kill.write_text("1")
    for _ in range(50):
        try:
            for sub in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                if sub.is_dir():
                    sub.rmdir()
            path.rmdir()
            return
        except OSError:
            time.sleep(0.1)
    raise BoxError(f"cannot remove the cgroup {path}: processes are still in it")


@dataclass
class Box:
    """A box named ``name`` whose files live in ``RUN_ROOT/name``."""

    name: str
    rootfs: Path  # the pristine, extracted rootfs (the overlay's lower directory)
    run_dir: Path = field(init=False)
    holder: subprocess.Popen[str] | None = None
    nspawn: subprocess.Popen[bytes] | None = None
    netns: str = ""
    leader: int = 0
    boots: int = 0
    forward: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.run_dir = RUN_ROOT / self.name
        for sub in ("upper", "work", "merged", "docker"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        (self.run_dir / "pid").write_text(str(os.getpid()))

    # -- the disk, before a boot ------------------------------------------------------------
    @property
    def upper(self) -> Path:
        return self.run_dir / "upper"

    def write(self, path: str, text: str, mode: int = 0o644) -> None:
        """Put a file on the box's disk (only while it is powered off)."""
        if self.running():
            raise BoxError("the box's disk is written only while it is off")
        target = self.upper / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(mode)

    def seed(self, user_data: str, instance_id: str, hostname: str = "ip-10-0-0-7") -> None:
        """cloud-init's NoCloud seed: the user-data and the instance id it runs for."""
        seed = "/var/lib/cloud/seed/nocloud"
        self.write(f"{seed}/user-data", user_data, 0o600)
        self.write(f"{seed}/meta-data", f"instance-id: {instance_id}\n"
                   f"local-hostname: {hostname}\n", 0o600)

    # -- the network ------------------------------------------------------------------------
    def start_network(self, state: dict[str, object], forward: list[int]) -> None:
        """The holder process: the box's private namespace, the IMDS and the forwarder.
        Each boot gets a fresh namespace (as a started instance gets a fresh network)."""
        self.set_metadata(state)
        self.forward = list(forward)
        self._start_holder()

    def _stop_holder(self) -> None:
        if self.holder is not None and self.holder.poll() is None:
            assert self.holder.stdin is not None
            self.holder.stdin.close()
            try:
                self.holder.wait(10)
            except subprocess.TimeoutExpired:
                self.holder.kill()
                self.holder.wait(10)
        self.netns = ""

    def _start_holder(self) -> None:
        self._stop_holder()
        command = [sys.executable, "-m", "tests.box.netns", "--state",
                   str(self.run_dir / "imds.json")]
        for port in self.forward:
            command += ["--forward", str(port)]
        self.holder = subprocess.Popen(
            command, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            preexec_fn=_die_with_parent)
        assert self.holder.stdout is not None
        line = self.holder.stdout.readline().split()
        if line[:1] != ["ready"]:
            self.holder.wait(10)
            raise BoxError(f"the box's network did not come up (exit {self.holder.returncode})")
        self.netns = line[1]

    def set_metadata(self, state: dict[str, object]) -> None:
        """What the fake IMDS answers from now on (read at every request)."""
        path = self.run_dir / "imds.json"
        path.with_suffix(".tmp").write_text(json.dumps(state))
        path.with_suffix(".tmp").replace(path)

    # -- boot, run, stop --------------------------------------------------------------------
    def boot(self, timeout: float = 120.0, *, wait: bool = True) -> None:
        """Boot the box and wait until its systemd has finished starting up (or, with
        ``wait=False``, only until its systemd runs: for a box expected to power off)."""
        if self.running():
            raise BoxError(f"the box {self.name} is already running")
        if self.boots and self.holder is not None:
            self._start_holder()
        check_private_network(self.netns)
        roots = cgroup_roots()
        groups = [root / CGROUP_PARENT / self.name for root in roots]
        for group in groups:
            _remove_cgroup(group)
            group.mkdir(parents=True)
        self.boots += 1
        console = (self.run_dir / f"console-{self.boots}.log").open("wb")

        def enter_cgroups() -> None:
            for group in groups:
                (group / "cgroup.procs").write_text(str(os.getpid()))
            _die_with_parent(signal.SIGTERM)  # nspawn then shuts the box down cleanly

        self.nspawn = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", str(HERE / "launch"),
             str(self.run_dir), str(self.rootfs), self.netns, self.name],
            stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
            preexec_fn=enter_cgroups)
        console.close()
        self.leader = self._find_leader(timeout=30)
        (self.run_dir / "leader").write_text(str(self.leader))
        if not wait:
            return
        state = self._wait_started(timeout)
        if state == "powered-off":
            return  # a guard powered it off while it booted: the caller asks wait_exit()
        if state not in ("running", "degraded"):
            raise BoxError(f"the box did not finish booting: {state}")

    def _wait_started(self, timeout: float) -> str:
        """systemd's state once it has started up; "powered-off" if the box went away
        meanwhile (a client inside may then never return: it is not waited for)."""
        assert self.nspawn is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._pid1_is_systemd() or self.nspawn.poll() is not None:
                # shutting down: a process started inside now would hold the shutdown up
                # (systemd-shutdown waits for every process of the box to go)
                try:
                    self.nspawn.wait(max(1.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    return "stuck while powering off"
                return "powered-off"
            waiting = subprocess.Popen(
                ["nsenter", "-t", str(self.leader), "-a", "env", "-i", f"PATH={BOX_PATH}",
                 "systemctl", "is-system-running", "--wait"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            while waiting.poll() is None and self.nspawn.poll() is None \
                    and time.monotonic() < deadline:
                time.sleep(0.2)
            if waiting.poll() is None:
                waiting.kill()
                waiting.wait()
            if self.nspawn.poll() is not None:
                return "powered-off"
            assert waiting.stdout is not None
            state = waiting.stdout.read().strip()
            if state in ("running", "degraded"):
                return state
            if state == "stopping":  # no more processes inside: they would hold it up
                try:
                    self.nspawn.wait(max(1.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    return "stuck while powering off"
                return "powered-off"
            time.sleep(0.5)  # not up yet (no bus, or "starting"), or "stopping"
        return f"still starting after {timeout:.0f} s"

    def _pid1_is_systemd(self) -> bool:
        try:
            return Path(f"/proc/{self.leader}/comm").read_text().strip() == "systemd"
        except OSError:
            return False

    def _find_leader(self, timeout: float) -> int:
        assert self.nspawn is not None
        children = Path(f"/proc/{self.nspawn.pid}/task/{self.nspawn.pid}/children")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.nspawn.poll() is not None:
                raise BoxError(f"systemd-nspawn exited with {self.nspawn.returncode}: "
                               + self.console()[-2000:])
            with contextlib.suppress(OSError):
                for pid in children.read_text().split():
                    if Path(f"/proc/{pid}/comm").read_text().strip() == "systemd":
                        return int(pid)
            time.sleep(0.1)
        raise BoxError("the box's systemd did not start: " + self.console()[-2000:])

    def running(self) -> bool:
        return self.nspawn is not None and self.nspawn.poll() is None

    def run(self, argv: list[str], *, check: bool = True, timeout: float = 300.0,
            input: str | None = None, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the box (all its namespaces), as root, with a clean env."""
        if not self.running():
            raise BoxError(f"the box {self.name} is not running")
        environment = {"PATH": BOX_PATH, "LANG": "C.UTF-8", **(env or {})}
        command = ["nsenter", "-t", str(self.leader), "-a", "env", "-i",
                   *(f"{k}={v}" for k, v in environment.items()), *argv]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              input=input, check=False)
        if check and done.returncode != 0:
            raise BoxError(f"in the box, {' '.join(argv)} exited with {done.returncode}:\n"
                           f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done

    def sh(self, script: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return self.run(["sh", "-c", script], **kwargs)  # type: ignore[arg-type]

    def wait_exit(self, timeout: float) -> int:
        """Wait for the box to power off; nspawn's exit code (0 after a poweroff)."""
        assert self.nspawn is not None
        code = self.nspawn.wait(timeout)
        self._after_exit()
        return code

    def poweroff(self, timeout: float = 60.0) -> int:
        self.run(["systemctl", "poweroff"], check=False)
        return self.wait_exit(timeout)

    def _after_exit(self) -> None:
        for root in cgroup_roots():
            _remove_cgroup(root / CGROUP_PARENT / self.name)
        shutil.rmtree(f"/run/systemd/nspawn/propagate/{self.name}", ignore_errors=True)

    def console(self) -> str:
        path = self.run_dir / f"console-{self.boots}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def journal(self, *args: str) -> str:
        """The box's journal: from its journald while it runs, else from its disk."""
        if self.running():
            return self.run(["journalctl", "--no-pager", *args], check=False).stdout
        journal = self.upper / "var" / "log" / "journal"
        done = subprocess.run(["journalctl", "-D", str(journal), "--no-pager", *args],
                              capture_output=True, text=True, check=False)
        return done.stdout

    # -- teardown ---------------------------------------------------------------------------
    def destroy(self, keep_logs: bool = False) -> None:
        """End the box and its network, remove its cgroups and files. Idempotent."""
        if self.nspawn is not None and self.nspawn.poll() is None:
            self.nspawn.send_signal(signal.SIGTERM)  # nspawn powers the box off
            try:
                self.nspawn.wait(30)
            except subprocess.TimeoutExpired:
                self.nspawn.kill()
                self.nspawn.wait(10)
        if self.nspawn is not None:
            self._after_exit()
        self._stop_holder()
        if keep_logs:
            self.save_logs()
        destroy_files(self.run_dir)

    def save_logs(self) -> Path:
        target = LOG_ROOT / self.name
        target.mkdir(parents=True, exist_ok=True)
        for log in self.run_dir.glob("console-*.log"):
            shutil.copy(log, target / log.name)
        (target / "journal.txt").write_text(self.journal())
        return target


def check_private_network(netns: str) -> None:
    """Refuse to boot unless ``netns`` is a namespace other than the host's with
    nothing but ``lo`` in it: on the host's network, a request to 169.254.169.254
    would leave this machine."""
    if not netns or not Path(netns).exists():
        raise BoxError("the box needs a private network namespace (none was made)")
    if same_namespace(netns, "/proc/self/ns/net"):
        raise BoxError("refusing to boot the box in the host's network namespace")
    links = subprocess.run(["nsenter", f"--net={netns}", "ip", "-o", "link", "show"],
                           capture_output=True, text=True, check=True).stdout
    names = [line.split(":")[1].strip() for line in links.splitlines() if ":" in line]
    if names != ["lo"]:
        raise BoxError(f"refusing to boot: the box's network namespace has {names}, not only lo")


def destroy_files(run_dir: Path) -> None:
    """Remove a box's files; a mount left under them (a killed launcher) goes first."""
    mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    for line in reversed(mounts):
        point = line.split()[4]
        if point.startswith(str(run_dir) + "/"):
            subprocess.run(["umount", "--lazy", point], check=False)
    shutil.rmtree(run_dir, ignore_errors=True)


def reap_stale() -> list[str]:
    """Remove what boxes of dead test runs left behind (their owner's pid is gone)."""
    reaped = []
    if not RUN_ROOT.is_dir():
        return reaped
    for run_dir in RUN_ROOT.iterdir():
        owner = run_dir / "pid"
        with contextlib.suppress(ValueError, OSError):
            if Path(f"/proc/{int(owner.read_text())}").exists():
                continue
        for root in cgroup_roots():
            _remove_cgroup(root / CGROUP_PARENT / run_dir.name)
        shutil.rmtree(f"/run/systemd/nspawn/propagate/{run_dir.name}", ignore_errors=True)
        destroy_files(run_dir)
        reaped.append(run_dir.name)
    return reaped


def _die_with_parent(sig: int = signal.SIGKILL) -> None:
    """(In a child, before exec) get ``sig`` when the process that started us dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
