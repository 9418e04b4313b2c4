"""The operating system's security updates, on every trading day after the session.

``market-sync-agent os-updates``, run by ``market-sync-os-updates.timer`` at 15:40 IST
(the app has stopped at 15:35, the backup starts at 16:00), never in market hours.

* **Amazon Linux 2023** locks its repositories to one release ("deterministic
  upgrades"), so ``dnf upgrade --security`` alone never finds a fix published in a
  later release. AWS advises moving to a *specific* release rather than ``latest``:
  the pin is the release of the newest AL2023 image when ``market-sync provision``
  last ran, kept at ``/market-sync/<stack>/os-releasever``; this runs
  ``dnf --releasever=<pin> upgrade --security``. Without a pin it changes nothing and
  says so (re-running ``provision`` moves the pin forward).
* **Ubuntu/Debian**: ``unattended-upgrade`` (security origins only, its default).

A new kernel takes effect at the next boot: the instance boots every trading morning.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.appsecrets import os_release_parameter
from shared.aws import aws_error, error_code
from shared.errors import MarketSyncError

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

logger = logging.getLogger(__name__)

RELEASE = re.compile(r"^2023\.\d+\.\d{8}$")
STACK_TAG = "market-sync:stack"


def release_of_image(name: str) -> str | None:
    """``al2023-ami-2023.9.20251117.0-kernel-6.1-x86_64`` → ``2023.9.20251117``."""
    found = re.search(r"al2023-ami-(?:minimal-)?(2023\.\d+\.\d{8})", name)
    return found.group(1) if found else None


def read_pin(ssm: SSMClient, stack: str) -> str | None:
    try:
        value = ssm.get_parameter(Name=os_release_parameter(stack),
                                  WithDecryption=True)["Parameter"].get("Value")
    except Exception as exc:
        if error_code(exc) == "ParameterNotFound":
            return None
        raise aws_error(exc, f"read {os_release_parameter(stack)}") from None
    if value is None or not RELEASE.match(value):
        raise MarketSyncError(f"{os_release_parameter(stack)} holds {value!r}, not an AL2023 "
                              "release like 2023.9.20251117",
                              "run `market-sync provision` again: it writes the pin")
    return value


@dataclass(frozen=True)
class UpdatePlan:
    commands: tuple[tuple[str, ...], ...]
    describe: str


def plan_updates(which: Callable[[str], str | None], pin: Callable[[], str | None]) -> UpdatePlan:
    """What to run here: dnf with the pinned release, or unattended-upgrade."""
    if which("dnf"):
        release = pin()
        if release is None:
            return UpdatePlan((), "no Amazon Linux release is pinned yet: nothing to do "
                                  "(`market-sync provision` writes the pin)")
        return UpdatePlan(
            (("dnf", "--assumeyes", "--quiet", f"--releasever={release}", "upgrade",
              "--security"),),
            f"security updates up to Amazon Linux release {release}")
    if which("unattended-upgrade"):
        return UpdatePlan((("apt-get", "update", "-q"), ("unattended-upgrade", "--verbose")),
                          "security updates through unattended-upgrades")
    raise MarketSyncError("neither dnf nor unattended-upgrade is installed here",
                          "install unattended-upgrades (Debian/Ubuntu)")


def run_updates(plan: UpdatePlan,
                run: Callable[[Sequence[str]], int] | None = None) -> None:
    """Run the plan's commands in order; the first failure is an error (OnFailure mails)."""
    def default(argv: Sequence[str]) -> int:
        return subprocess.run(list(argv), check=False).returncode

    runner = run or default
    for argv in plan.commands:
        logger.info("running %s", " ".join(argv))
        code = runner(argv)
        if code != 0:
            raise MarketSyncError(f"{argv[0]} failed (exit {code}) while installing the "
                                  "operating system's security updates",
                                  "the journal of market-sync-os-updates.service has why")


def which(name: str) -> str | None:
    return shutil.which(name)
