"""What the menu and the status window may ask of the app's shell (no windows imported).

The shell (:class:`desktop.ui.shell.Shell`) owns the windows and implements this;
the tray menu and the status window only know this protocol, so neither imports
the shell that creates them.
"""

from __future__ import annotations

from typing import Protocol


class ShellActions(Protocol):
    demo: bool

    def sync_now(self) -> None: ...

    def show_progress(self) -> object: ...

    def show_conflicts(self) -> object: ...

    def show_history(self) -> object: ...

    def show_settings(self) -> object: ...

    def show_app_secrets(self) -> object: ...

    def set_access_token(self) -> object: ...

    def show_status(self) -> object: ...

    def open_logs(self) -> object: ...

    def quit(self) -> None: ...
