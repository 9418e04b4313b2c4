"""Files rendered for the instance: cloud-init user-data, systemd units, configs."""
