"""``scripts/box``: the instance in a box by hand.

  scripts/box build                      build (or find) the cached rootfs
  scripts/box boot USER-DATA [--moto-port PORT] [--instance-id ID]
                                         boot a box with that user-data; stays in the
                                         foreground until the box powers off or ^C
  scripts/box exec NAME -- CMD…          run CMD inside the running box NAME
  scripts/box destroy                    remove what boxes of dead runs left behind
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from tests.box import rootfs
from tests.box.box import BOX_PATH, RUN_ROOT, Box, BoxError, reap_stale


def _build() -> int:
    started = time.monotonic()
    log: list[str] = []
    box = rootfs.ensure_box_rootfs(log)
    image = rootfs.ensure_image_rootfs(log)
    for line in log:
        print(line)
    print(f"box rootfs: {box}\napp image rootfs: {image}\n"
          f"({time.monotonic() - started:.0f} s)")
    return 0


def _boot(args: argparse.Namespace) -> int:
    box = Box(f"msbox-{os.getpid()}", rootfs.ensure_box_rootfs())

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        box.seed(Path(args.user_data).read_text(), args.instance_id)
        box.start_network({"instance_id": args.instance_id, "region": args.region, "tags": {},
                           "moto": f"http://127.0.0.1:{args.moto_port or 0}"},
                          [args.moto_port] if args.moto_port else [])
        box.boot()
        print(f"box {box.name} is up: scripts/box exec {box.name} -- CMD…  "
              f"(console: {box.run_dir}/console-1.log; ^C destroys it)", flush=True)
        code = box.wait_exit(timeout=None)  # type: ignore[arg-type]
        print(f"the box powered off (systemd-nspawn exited {code})")
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        box.destroy()


def _exec(args: argparse.Namespace) -> int:
    leader = RUN_ROOT / args.name / "leader"
    if not leader.exists():
        print(f"no running box named {args.name}", file=sys.stderr)
        return 2
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    os.execvp("nsenter", ["nsenter", "-t", leader.read_text().strip(), "-a", "env", "-i",
                          f"PATH={BOX_PATH}", "LANG=C.UTF-8", *(command or ["bash"])])


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/box", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build")
    boot = commands.add_parser("boot")
    boot.add_argument("user_data")
    boot.add_argument("--moto-port", type=int, default=0)
    boot.add_argument("--instance-id", default="i-0b0x0000000000001")
    boot.add_argument("--region", default="ap-south-1")
    run = commands.add_parser("exec")
    run.add_argument("name")
    run.add_argument("command", nargs=argparse.REMAINDER)
    commands.add_parser("destroy")
    args = parser.parse_args()
    try:
        if args.command == "build":
            return _build()
        if args.command == "boot":
            return _boot(args)
        if args.command == "exec":
            return _exec(args)
        for name in reap_stale():
            print(f"removed {name}")
        return 0
    except BoxError as exc:
        print(f"scripts/box: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
