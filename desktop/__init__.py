"""The laptop side: the sync engine, the CLI, and (under ``desktop/ui``) the tray app."""
