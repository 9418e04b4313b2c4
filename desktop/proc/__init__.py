"""Process plumbing: the tray's engine work in a child process and its protocol."""
