"""Run the package tests only when what they test changed (``scripts/test`` asks here).

Building the app takes a minute or two on the 2-core machine, so ``scripts/test`` runs
``tests/package`` when the packaging inputs differ from the last set that passed here
(a stamp keyed by their hash under the user's cache folder), and always with
``MARKET_SYNC_PACKAGE_TESTS=1``. A new machine has no stamp: it runs them.

    python -m tests.package.gate   # prints the pytest arguments to leave them out, or nothing
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What decides how the app is built and how it starts: the dependencies, the spec and
# its inputs, the dispatch and the worker, where it keeps things and its secrets, the
# installer (provision and deploy-agent run from the package), and these tests with
# their session.
INPUTS = ("pyproject.toml", "packaging", "scripts/package", "desktop/launcher.py",
          "desktop/cli.py", "desktop/system", "desktop/proc", "desktop/ui/iconfiles.py",
          "installer", "shared/paths.py", "shared/secrets.py", "shared/devtools/traysession.py",
          "shared/devtools/secretservice.py", "tests/package")


def inputs_key() -> str:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard", "--", *INPUTS], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    digest = hashlib.sha256()
    for name in sorted(filter(None, listed)):
        path = ROOT / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def stamp() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "market-sync-tests" / f"package-passed-{inputs_key()}"


def record_passed() -> None:
    path = stamp()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("tests/package passed with these packaging inputs\n")


def main() -> int:
    if os.environ.get("MARKET_SYNC_PACKAGE_TESTS") == "1" or not stamp().exists():
        return 0
    print("--ignore=tests/package")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
