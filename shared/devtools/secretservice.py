"""An in-memory Secret Service (``org.freedesktop.secrets``) on a test session bus.

What GNOME Keyring and KWallet offer Linux apps, reduced to what a keyring client needs:
plain sessions (no DH: the bus is private to the test), one unlocked collection at the
``default`` alias, items with attributes, search, create (with replace), read, delete.
The app under test talks to it through its own bundled ``keyring`` and ``secretstorage``,
so a test sees whether the packaged app really reaches the OS keyring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.devtools.traysession import PROPERTIES, BusService

SERVICE_PATH = "/org/freedesktop/secrets"
DEFAULT_COLLECTION = SERVICE_PATH + "/aliases/default"
ITEM_PREFIX = SERVICE_PATH + "/collection/default/"
SECRET = "org.freedesktop.Secret."
NOT_SUPPORTED = "org.freedesktop.DBus.Error.NotSupported"
NO_SUCH_OBJECT = "org.freedesktop.DBus.Error.UnknownObject"


@dataclass
class StoredSecret:
    label: str
    attributes: dict[str, str]
    secret: bytes
    content_type: str


class MemorySecretService(BusService):
    name = "org.freedesktop.secrets"

    def __init__(self, address: str) -> None:
        super().__init__(address)
        self.items: dict[str, StoredSecret] = {}
        self._next = 1

    def find(self, **attributes: str) -> list[StoredSecret]:
        return [i for i in self.items.values()
                if all(i.attributes.get(k) == v for k, v in attributes.items())]

    def answer(self, msg: Any, path: str, interface: str, member: str, sender: str) -> None:
        if path == SERVICE_PATH and member == "OpenSession":
            algorithm, _input = msg.body
            if algorithm != "plain":
                self.error(msg, NOT_SUPPORTED)
            else:
                self.reply(msg, "vo", (("s", ""), SERVICE_PATH + "/session/1"))
        elif path == SERVICE_PATH and member == "Unlock":  # everything here is unlocked
            self.reply(msg, "aoo", (list(msg.body[0]), "/"))
        elif path == SERVICE_PATH and member == "ReadAlias":
            self.reply(msg, "o", (DEFAULT_COLLECTION if msg.body[0] == "default" else "/",))
        elif path == DEFAULT_COLLECTION:
            self._collection(msg, interface, member)
        elif path in self.items:
            self._item(msg, path, interface, member)
        else:
            self.error(msg, NO_SUCH_OBJECT)

    def _collection(self, msg: Any, interface: str, member: str) -> None:
        if interface == PROPERTIES and member == "Get":
            values = {"Label": ("s", "Default"), "Locked": ("b", False)}
            self.reply(msg, "v", (values.get(msg.body[1], ("s", "")),))
        elif member == "SearchItems":
            (query,) = msg.body
            self.reply(msg, "ao", ([p for p, i in self.items.items()
                                    if all(i.attributes.get(k) == v
                                           for k, v in query.items())],))
        elif member == "CreateItem":
            properties, (_session, _params, value, content_type), replace = msg.body
            attributes = dict(properties[SECRET + "Item.Attributes"][1])
            label = properties.get(SECRET + "Item.Label", ("s", ""))[1]
            path = next((p for p, i in self.items.items() if i.attributes == attributes),
                        None) if replace else None
            if path is None:
                path = f"{ITEM_PREFIX}{self._next}"
                self._next += 1
            self.items[path] = StoredSecret(label, attributes, bytes(value), content_type)
            self.reply(msg, "oo", (path, "/"))
        else:
            self.error(msg)

    def _item(self, msg: Any, path: str, interface: str, member: str) -> None:
        item = self.items[path]
        if interface == PROPERTIES and member == "Get":
            values = {"Label": ("s", item.label), "Attributes": ("a{ss}", item.attributes),
                      "Locked": ("b", False), "Created": ("t", 0), "Modified": ("t", 0)}
            self.reply(msg, "v", (values[msg.body[1]],))
        elif member == "GetSecret":
            self.reply(msg, "(oayays)",
                       ((SERVICE_PATH + "/session/1", b"", item.secret, item.content_type),))
        elif member == "Delete":
            del self.items[path]
            self.reply(msg, "o", ("/",))
        else:
            self.error(msg)
