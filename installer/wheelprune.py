"""The instance's dependency wheels without what the agent never loads.

botocore's wheel carries the model of every AWS service (~17 MB zipped); the backup agent
on the instance calls five of them. ``scripts/package`` ships the agent's dependency wheels
inside the app (:func:`installer.agentwheel.shipped_wheelhouse`), so it repacks botocore's
with the services listed in ``packaging/instance-botocore-services.txt`` plus everything
botocore loads for itself (the files directly under ``botocore/data/``: endpoints,
partitions, retry and default-configuration tables). The version stays the same, so the
agent's ``boto3`` → ``botocore`` pins resolve from the wheelhouse as before; the RECORD is
rewritten for the files kept (a valid wheel for ``pip install --no-index``) and a
``market-sync-pruned.txt`` in the ``.dist-info`` says what was kept.

zstandard's wheel holds its compressor twice: the C extension it imports and a CFFI
build it falls back to only when the C one cannot load (12 MB unzipped each); the
instance gets the C one.

Usage: ``python -m installer.wheelprune WHEELHOUSE SERVICES_FILE`` (botocore and zstandard)
"""

from __future__ import annotations

import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

from installer.agentwheel import record_hash

DATA = "botocore/data/"
NOTE = "market-sync-pruned.txt"


def read_services(path: Path) -> set[str]:
    """The service names in a list file (one a line, ``#`` comments)."""
    return {line.split("#")[0].strip() for line in path.read_text().splitlines()} - {""}


def botocore_member(services: set[str]) -> Callable[[str], bool]:
    def kept(name: str) -> bool:
        if not name.startswith(DATA):
            return True
        service, _, rest = name[len(DATA):].partition("/")
        return not rest or service in services  # a file directly under data/, or kept
    return kept


def zstandard_member(name: str) -> bool:
    return not name.startswith(("zstandard/_cffi.", "zstandard/backend_cffi."))


def prune_wheel(wheel: Path, kept: Callable[[str], bool], note: str) -> int:
    """Rewrite ``wheel`` in place with the members ``kept`` accepts; the bytes it saved."""
    with zipfile.ZipFile(wheel) as source:
        infos = source.infolist()
        records = [i.filename for i in infos if i.filename.endswith(".dist-info/RECORD")]
        if len(records) != 1:
            raise ValueError(f"{wheel.name} is not a wheel (no single .dist-info/RECORD)")
        record_name = records[0]
        dist_info = record_name.rsplit("/", 1)[0]
        names = {i.filename for i in infos
                 if i.filename.startswith(f"{dist_info}/") or kept(i.filename)}
        lines = [line for line in source.read(record_name).decode().splitlines()
                 if line and line.split(",", 1)[0] in names - {record_name}]
        text = f"repacked by market-sync's scripts/package for the instance: {note}\n".encode()
        lines.append(f"{dist_info}/{NOTE},{record_hash(text)},{len(text)}")
        lines.append(f"{record_name},,")
        partial = wheel.with_name(wheel.name + ".partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as target:
            for info in infos:
                if info.filename in names and info.filename != record_name:
                    target.writestr(info, source.read(info), zipfile.ZIP_DEFLATED)
            target.writestr(f"{dist_info}/{NOTE}", text)
            target.writestr(record_name, "\n".join(lines) + "\n")
    before = wheel.stat().st_size
    partial.replace(wheel)
    return before - wheel.stat().st_size


def prune_botocore_wheel(wheel: Path, services: set[str]) -> int:
    """``wheel`` with only ``services``' models (and botocore's own data files)."""
    with zipfile.ZipFile(wheel) as source:
        present = {n[len(DATA):].split("/")[0] for n in source.namelist()
                   if n.startswith(DATA)}
    if services - present:
        raise ValueError(f"{wheel.name} has no model for {', '.join(sorted(services - present))}")
    return prune_wheel(wheel, botocore_member(services),
                       "service models kept: " + ", ".join(sorted(services)))


def only(wheelhouse: Path, project: str) -> Path:
    wheels = sorted(wheelhouse.glob(f"{project}-*.whl"))
    if len(wheels) != 1:
        raise ValueError(f"{len(wheels)} {project} wheels in {wheelhouse}, expected one")
    return wheels[0]


def main(argv: list[str]) -> int:
    wheelhouse, services_file = Path(argv[0]), Path(argv[1])
    try:
        botocore = only(wheelhouse, "botocore")
        saved = prune_botocore_wheel(botocore, read_services(services_file))
        zstandard = only(wheelhouse, "zstandard")
        saved_z = prune_wheel(zstandard, zstandard_member, "without the CFFI backend")
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        print(f"wheelprune: {exc}", file=sys.stderr)
        return 1
    print(f"{botocore.name}: {saved / 1e6:.1f} MB of unused AWS service models left out; "
          f"{zstandard.name}: {saved_z / 1e6:.1f} MB (its CFFI twin)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
