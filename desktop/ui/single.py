"""One tray per user: a second launch asks the first to show its window, then exits."""

from __future__ import annotations

import getpass
import hashlib
import logging

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtNetwork import QLocalServer, QLocalSocket

logger = logging.getLogger(__name__)

ACTIVATE = b"activate\n"


def server_name(key: str = "") -> str:
    """A per-user name (and per config, so a demo does not collide with the real tray)."""
    digest = hashlib.sha256(f"{getpass.getuser()}|{key}".encode()).hexdigest()[:12]
    return f"market-sync-{digest}"


class SingleInstance(QObject):
    """Claim the name; if another instance holds it, ask it to come forward.

    Signals:
        activated(): another launch asked this one to show its window.
    """

    activated = Signal()

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.server: QLocalServer | None = None

    def notify_running(self, timeout_ms: int = 1000) -> bool:
        """True if another instance answered (and was told to activate)."""
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        if not socket.waitForConnected(timeout_ms):
            return False
        socket.write(ACTIVATE)
        socket.flush()
        socket.waitForBytesWritten(timeout_ms)
        socket.disconnectFromServer()
        return True

    def claim(self) -> bool:
        """True if this process is now the one instance."""
        if self.notify_running():
            return False
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.name):
            # A stale socket from a crashed instance: nobody answered above, so remove it.
            QLocalServer.removeServer(self.name)
            if not server.listen(self.name):
                logger.warning("single-instance socket %s: %s", self.name, server.errorString())
                return True
        server.newConnection.connect(self._connection)
        self.server = server
        return True

    @Slot()
    def _connection(self) -> None:
        assert self.server is not None
        while (socket := self.server.nextPendingConnection()) is not None:
            socket.readyRead.connect(self._read)
            socket.disconnected.connect(socket.deleteLater)

    @Slot()
    def _read(self) -> None:
        socket = self.sender()
        if isinstance(socket, QLocalSocket) and bytes(socket.readAll().data()).startswith(
                ACTIVATE.strip()):
            self.activated.emit()

    def release(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
