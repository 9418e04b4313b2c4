"""A desktop session for a tray app under test: Xvfb, a D-Bus session bus, a tray host.

The tray host is a StatusNotifier host, the D-Bus protocol the tray of KDE, GNOME (with
its AppIndicator extension), Xfce, LXQt and others speak: it owns
``org.kde.StatusNotifierWatcher``, so Qt's QSystemTrayIcon registers its icon there
(``RegisterStatusNotifierItem``), and it reads the icon's properties and opens and clicks
its menu (``com.canonical.dbusmenu``) exactly as a panel does. Nothing here imports Qt:
the app under test runs in its own process (the packaged executable, in the tests).

Needs ``Xvfb`` and ``dbus-daemon`` (Debian: xvfb, dbus-daemon) and ``jeepney``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.devtools.secretservice import MemorySecretService

WATCHER = "org.kde.StatusNotifierWatcher"
WATCHER_PATH = "/StatusNotifierWatcher"
ITEM_INTERFACE = "org.kde.StatusNotifierItem"
MENU_INTERFACE = "com.canonical.dbusmenu"
PROPERTIES = "org.freedesktop.DBus.Properties"

_INTROSPECTION = f"""<node>
 <interface name="{WATCHER}">
  <method name="RegisterStatusNotifierItem"><arg name="service" type="s" direction="in"/></method>
  <method name="RegisterStatusNotifierHost"><arg name="service" type="s" direction="in"/></method>
  <property name="RegisteredStatusNotifierItems" type="as" access="read"/>
  <property name="IsStatusNotifierHostRegistered" type="b" access="read"/>
  <property name="ProtocolVersion" type="i" access="read"/>
  <signal name="StatusNotifierItemRegistered"><arg type="s"/></signal>
 </interface>
 <interface name="{PROPERTIES}">
  <method name="Get"><arg type="s" direction="in"/><arg type="s" direction="in"/>
   <arg type="v" direction="out"/></method>
  <method name="GetAll"><arg type="s" direction="in"/><arg type="a{{sv}}" direction="out"/></method>
 </interface>
</node>"""


class TraySessionError(RuntimeError):
    """The session could not be set up, or the app did not get where it was awaited."""


def wait_for(what: str, done: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TraySessionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


@dataclass(frozen=True)
class Registration:
    """One ``RegisterStatusNotifierItem`` call: who, and when (``time.monotonic()``)."""

    bus_name: str
    path: str
    at: float


@dataclass(frozen=True)
class MenuEntry:
    id: int
    label: str
    enabled: bool


class BusService:
    """One well-known name on the session bus at ``address``, its calls answered by
    :meth:`answer` on a thread of its own (jeepney, blocking I/O)."""

    name = ""

    def __init__(self, address: str) -> None:
        self.address = address
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._server: Any = None

    def start(self) -> BusService:
        from jeepney.bus_messages import message_bus
        from jeepney.io.blocking import open_dbus_connection

        self._server = open_dbus_connection(bus=self.address)
        reply = self._server.send_and_get_reply(message_bus.RequestName(self.name, 0x4))
        if tuple(reply.body) != (1,):  # DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER
            raise TraySessionError(f"could not own {self.name} on the session bus "
                                   f"({reply.body})")
        self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._server is not None:
            self._server.close()

    def _serve(self) -> None:
        from jeepney import HeaderFields, MessageType

        while not self._stop.is_set():
            try:
                msg = self._server.receive(timeout=0.2)
            except TimeoutError:
                continue
            except (OSError, EOFError, ValueError):
                return
            if msg.header.message_type != MessageType.method_call:
                continue
            fields = msg.header.fields
            self.answer(msg, fields.get(HeaderFields.path, ""),
                        fields.get(HeaderFields.interface, ""), fields[HeaderFields.member],
                        fields.get(HeaderFields.sender, ""))

    def reply(self, msg: Any, signature: str | None = None, body: tuple[Any, ...] = ()) -> None:
        from jeepney import new_method_return

        self._server.send(new_method_return(msg, signature, body))

    def error(self, msg: Any, name: str = "org.freedesktop.DBus.Error.UnknownMethod") -> None:
        from jeepney import new_error

        self._server.send(new_error(msg, name))

    def answer(self, msg: Any, path: str, interface: str, member: str, sender: str) -> None:
        raise NotImplementedError


class StatusNotifierHost(BusService):
    """The watcher and host: Qt registers its icon here; the test looks at it and clicks."""

    name = WATCHER

    def __init__(self, address: str) -> None:
        super().__init__(address)
        self.registrations: list[Registration] = []
        self._client: Any = None

    def start(self) -> StatusNotifierHost:
        from jeepney.io.blocking import open_dbus_connection

        super().start()
        self._client = open_dbus_connection(bus=self.address)
        return self

    def stop(self) -> None:
        super().stop()
        if self._client is not None:
            self._client.close()

    # -- the watcher's side: answer Qt ------------------------------------------------------
    def answer(self, msg: Any, path: str, interface: str, member: str, sender: str) -> None:
        items = [r.bus_name + r.path for r in self.registrations]
        props: dict[str, tuple[str, Any]] = {
            "RegisteredStatusNotifierItems": ("as", items),
            "IsStatusNotifierHostRegistered": ("b", True),
            "ProtocolVersion": ("i", 0),
        }
        if member == "RegisterStatusNotifierItem":
            (service,) = msg.body
            item_path = service if service.startswith("/") else "/StatusNotifierItem"
            bus_name = sender if service.startswith("/") else service
            self.registrations.append(Registration(bus_name, item_path, time.monotonic()))
            self.reply(msg)
        elif member == "RegisterStatusNotifierHost":
            self.reply(msg)
        elif interface == PROPERTIES and member == "Get":
            self.reply(msg, "v", (props[msg.body[1]],))
        elif interface == PROPERTIES and member == "GetAll":
            self.reply(msg, "a{sv}", (props,))
        elif member == "Introspect":
            self.reply(msg, "s", (_INTROSPECTION,))
        else:
            self.error(msg)

    # -- the panel's side: look at the icon, open and click its menu ------------------------
    def wait_for_item(self, timeout: float = 30.0) -> Registration:
        wait_for("the tray icon to register", lambda: bool(self.registrations), timeout)
        return self.registrations[-1]

    def _call(self, path: str, interface: str, member: str, signature: str = "",
              body: tuple[Any, ...] = ()) -> tuple[Any, ...]:
        from jeepney import DBusAddress, MessageType, new_method_call

        item = self.wait_for_item(0)
        address = DBusAddress(path, bus_name=item.bus_name, interface=interface)
        reply = self._client.send_and_get_reply(
            new_method_call(address, member, signature, body), timeout=10)
        if reply.header.message_type == MessageType.error:
            raise TraySessionError(f"{interface}.{member} failed: {reply.body}")
        return tuple(reply.body)

    def item_properties(self) -> dict[str, Any]:
        """The icon's StatusNotifierItem properties (values without their signatures)."""
        item = self.wait_for_item(0)
        (props,) = self._call(item.path, PROPERTIES, "GetAll", "s", (ITEM_INTERFACE,))
        return {name: value for name, (_signature, value) in props.items()}

    def menu(self) -> list[MenuEntry]:
        """Open the menu (``AboutToShow``, as a panel does on a click) and read its entries."""
        path = self.item_properties()["Menu"]
        self._call(path, MENU_INTERFACE, "AboutToShow", "i", (0,))
        _revision, (_root, _props, children) = self._call(
            path, MENU_INTERFACE, "GetLayout", "iias", (0, -1, []))
        entries = []
        for _signature, (item_id, props, _sub) in children:
            label = props.get("label", ("s", ""))[1]
            if props.get("type", ("s", ""))[1] == "separator":
                continue
            entries.append(MenuEntry(item_id, label.replace("_", ""),
                                     props.get("enabled", ("b", True))[1]))
        return entries

    def click(self, label_prefix: str) -> MenuEntry:
        """Click the first enabled menu entry whose label starts with ``label_prefix``."""
        path = self.item_properties()["Menu"]
        for entry in self.menu():
            if entry.enabled and entry.label.startswith(label_prefix):
                self._call(path, MENU_INTERFACE, "Event", "isvu",
                           (entry.id, "clicked", ("i", 0), 0))
                return entry
        raise TraySessionError(f"no enabled menu entry starts with {label_prefix!r}: "
                               f"{[e.label for e in self.menu()]}")


@dataclass(frozen=True)
class TraySession:
    """What a process needs in its environment to live in this session."""

    display: str
    bus_address: str
    host: StatusNotifierHost | None
    secrets: MemorySecretService | None = None

    def environment(self, base: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env.update(DISPLAY=self.display, DBUS_SESSION_BUS_ADDRESS=self.bus_address,
                   QT_QPA_PLATFORM="xcb")
        for name in ("WAYLAND_DISPLAY", "XDG_CURRENT_DESKTOP", "QT_QPA_PLATFORMTHEME"):
            env.pop(name, None)
        return env


def _need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise TraySessionError(f"{tool} is not installed (Debian package {package})")
    return path


def _started_line(argv: list[str], what: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``argv``; its first stdout line is the address/display it chose."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line:
        process.kill()
        raise TraySessionError(f"{what} did not start ({' '.join(argv)})")
    return process, line


@contextmanager
def tray_session(with_tray_host: bool = True,
                 with_secret_service: bool = False) -> Iterator[TraySession]:
    """Xvfb on a free display, a private session bus, (by default) the tray host, and
    optionally an in-memory Secret Service (the OS keyring of a Linux desktop)."""
    from shared.devtools.secretservice import MemorySecretService

    xvfb = _need("Xvfb", "xvfb")
    dbus = _need("dbus-daemon", "dbus-daemon")
    with ExitStack() as stack:
        x_process, display = _started_line(
            [xvfb, "-displayfd", "1", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
            "Xvfb")
        stack.callback(_end, x_process)
        bus_process, address = _started_line(
            [dbus, "--session", "--nofork", "--print-address=1", "--nosyslog"], "dbus-daemon")
        stack.callback(_end, bus_process)
        host = None
        if with_tray_host:
            host = StatusNotifierHost(address).start()
            stack.callback(host.stop)
        secrets = None
        if with_secret_service:
            secrets = MemorySecretService(address)
            secrets.start()
            stack.callback(secrets.stop)
        yield TraySession(f":{display}", address, host, secrets)


def _end(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
