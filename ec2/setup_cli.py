"""The agent's commands for setting the instance up: ``compose-override`` (run by
market-sync-setup) and ``write-secrets`` (run by the units before the app or the
backup starts)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from ec2.instance import layout


def _compose_override(args: argparse.Namespace) -> int:
    from ec2.instance.configs import (
        OverrideSpec,
        app_services,
        postgres_service_of,
        render_compose_override,
    )
    from ec2.instance_secrets import write_private

    spec = OverrideSpec.from_json(Path(args.spec).read_text(encoding="utf-8"))
    services = app_services(Path(args.compose_json).read_text(encoding="utf-8"))
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_compose_override(spec, services), encoding="utf-8")
    postgres = postgres_service_of(spec, services)
    if args.env_file:
        write_private(Path(args.env_file), f"POSTGRES_SERVICE={shlex.quote(postgres)}\n")
    print(f"compose override for {', '.join(s.name for s in services)} "
          f"(PostgreSQL: {postgres}) in {output}")
    return 0


def _write_secrets(args: argparse.Namespace) -> int:
    from ec2.instance_secrets import (
        InstanceSecrets,
        write_app_env,
        write_git_credentials,
        write_pgpass,
    )
    from shared.aws import AwsClients
    from shared.config import load_config
    from shared.errors import ConfigError

    config = load_config(Path(args.config))
    if not config.agent.ssm_path:
        raise ConfigError(f"{config.path}: [agent] has no ssm_path",
                          "re-run `market-sync deploy-agent` to write it")
    secrets = InstanceSecrets(AwsClients(config.aws).ssm(), config.agent.ssm_path)
    if args.what == "git-credentials":
        if not args.url or not args.output:
            raise ConfigError("write-secrets git-credentials needs --url and --output")
        wrote = write_git_credentials(secrets, args.url, Path(args.output))
        print(f"wrote {args.output}" if wrote else "no deploy token in SSM: a public repository")
    elif args.what == "pgpass":
        target = Path(args.output or layout.PGPASS)
        wrote = write_pgpass(secrets, config.database.conninfo, target)
        print(f"wrote {target}" if wrote else "no database password in SSM: no pgpass")
    else:
        target = Path(args.output or layout.APP_ENV)
        count = write_app_env(secrets, target)
        print(f"wrote {count} variable(s) to {target}" if count
              else f"no app secrets in SSM: {target} left as it is")
    return 0


def register(commands: argparse._SubParsersAction[Any]) -> None:
    override = commands.add_parser(
        "compose-override", help="write the production compose override for the app's real "
        "services (from `docker compose config --format json`)")
    override.add_argument("--compose-json", required=True, metavar="FILE",
                          help="the output of `docker compose config --format json`")
    override.add_argument("--spec", default=layout.OVERRIDE_SPEC, metavar="FILE",
                          help=f"the override's inputs (default {layout.OVERRIDE_SPEC})")
    override.add_argument("--output", default=layout.COMPOSE_OVERRIDE, metavar="FILE",
                          help=f"where the override goes (default {layout.COMPOSE_OVERRIDE})")
    override.add_argument("--env-file", metavar="FILE",
                          help="also write POSTGRES_SERVICE=… here, for the units")
    override.set_defaults(handler=_compose_override)

    secrets = commands.add_parser(
        "write-secrets", help="render secrets from SSM into root-only files: the backup's "
        f"pgpass ({layout.PGPASS}), the app's .env ({layout.APP_ENV}) or a private git "
        "source's credentials")
    secrets.add_argument("what", choices=("pgpass", "app-env", "git-credentials"),
                         help="pgpass: the backup's database password; app-env: the app's "
                         ".env; git-credentials: a private git source's deploy token")
    secrets.add_argument("--output", metavar="FILE", help="write here instead")
    secrets.add_argument("--url", help="git-credentials: the app's https git URL")
    secrets.set_defaults(handler=_write_secrets)
