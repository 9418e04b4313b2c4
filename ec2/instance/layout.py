"""Where things live on the instance: one list of paths for the renderers and the docs."""

from __future__ import annotations

AGENT_VENV = "/opt/market-sync/venv"
AGENT = f"{AGENT_VENV}/bin/market-sync-agent"
CONFIG_DIR = "/etc/market-sync"
AGENT_TOML = f"{CONFIG_DIR}/agent.toml"
SETUP_ENV = f"{CONFIG_DIR}/setup.env"
COMPOSE_OVERRIDE = f"{CONFIG_DIR}/compose.override.yaml"
CLOUDWATCH_CONFIG = f"{CONFIG_DIR}/cloudwatch-agent.json"
SETUP_SCRIPT = "/usr/local/sbin/market-sync-setup"
APP_DIR = "/opt/market-app"
COMPOSE_PROJECT = "market-app"
UNIT_DIR = "/etc/systemd/system"
DOCKER = "/usr/bin/docker"
SYSTEMCTL = "/usr/bin/systemctl"
JOURNALCTL = "/usr/bin/journalctl"
LOG_DIR = "/var/log/market-sync"
JOURNAL_LOG = f"{LOG_DIR}/journal.log"
DOCKER_DAEMON_JSON = "/etc/docker/daemon.json"
LOGROTATE = "/etc/logrotate.d/market-sync"
SWAP_FILE = "/swapfile"
# The user-data's bootstrap (the same bytes for every market-sync version).
BOOTSTRAP_SCRIPT = "/usr/local/sbin/market-sync-bootstrap"
BOOTSTRAP_ENV = f"{CONFIG_DIR}/bootstrap.env"
FIRSTBOOT_UNIT = "market-sync-firstboot.service"
STATE_DIR = "/var/lib/market-sync"
SETUP_DONE = f"{STATE_DIR}/setup-done"  # setup has succeeded once: no more first-boot runs
# What the bootstrap fetches: the settings bundle (versioned by S3) and the agent's wheels.
SETTINGS_KEY = "artifacts/instance-settings.tar.gz"
WHEELHOUSE_PREFIX = "artifacts/wheels/"
# Rendered on the instance.
OVERRIDE_SPEC = f"{CONFIG_DIR}/compose-override.json"  # the inputs of the compose override
COMPOSE_ENV = f"{CONFIG_DIR}/compose.env"  # POSTGRES_SERVICE=… for the units
RUNTIME_DIR = "/run/market-sync"
PGPASS = f"{RUNTIME_DIR}/pgpass"  # the app database's password, root 0600, from SSM at boot
APP_ENV = f"{APP_DIR}/.env"  # the app's secrets, root 0600, from SSM before the app starts
SPOOL_DIR = "/var/tmp"  # the backup spools its parts on disk (AL2023's /tmp is RAM)
SETTINGS_JSON_KEY = "artifacts/instance-settings.json"  # the InstanceSettings record
