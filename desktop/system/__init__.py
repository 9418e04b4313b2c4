"""Integration with the operating system (start at login)."""
