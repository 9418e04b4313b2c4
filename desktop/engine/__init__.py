"""The sync engine: plain Python, no Qt. The CLI and the tray are thin layers over it."""
