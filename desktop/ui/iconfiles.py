"""The app's icon as files for the packages: PNGs, a Windows ``.ico``, a macOS ``.icns``.

Drawn at build time by :func:`desktop.ui.icons.state_pixmap` (the healthy tray glyph), so
the launcher icon is the tray's own drawing and no binary icon is committed. ``.ico`` and
``.icns`` are written here rather than through Qt's image plugins (``icns`` is not in
PySide6-Essentials): both formats accept PNG-compressed images, so each is a small
header in front of the PNGs.

    QT_QPA_PLATFORM=offscreen python -m desktop.ui.iconfiles OUT_DIR
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Mapping
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice

ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# Apple's icns element types holding PNG data, by pixel size (Apple's "icns" format notes).
ICNS_TYPES = {16: b"icp4", 32: b"icp5", 64: b"icp6", 128: b"ic07", 256: b"ic08",
              512: b"ic09", 1024: b"ic10"}
PNG_SIZES = (48, 128, 256)


def png_bytes(size: int) -> bytes:
    """The app icon at ``size`` pixels, as PNG."""
    from desktop.ui.icons import state_pixmap
    from desktop.ui.viewmodel import TrayState

    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not state_pixmap(TrayState.HEALTHY, size).save(buffer, "PNG"):
        raise RuntimeError(f"could not encode the {size} px icon as PNG")
    buffer.close()
    return bytes(data.data())


def ico(pngs: Mapping[int, bytes]) -> bytes:
    """An ICO file (ICONDIR, one ICONDIRENTRY per image, then the PNGs)."""
    sizes = sorted(pngs)
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = len(header) + 16 * len(sizes)
    entries, images = b"", b""
    for size in sizes:
        data = pngs[size]
        side = 0 if size >= 256 else size  # 0 means 256 in an ICONDIRENTRY
        entries += struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(data), offset)
        images += data
        offset += len(data)
    return header + entries + images


def icns(pngs: Mapping[int, bytes]) -> bytes:
    """An ICNS file: ``icns`` + total length, then one (type, length, PNG) element a size."""
    body = b"".join(ICNS_TYPES[size] + struct.pack(">I", 8 + len(data)) + data
                    for size, data in sorted(pngs.items()))
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def write_icon_files(out: Path) -> list[Path]:
    """``market-sync.png`` (256 px), ``market-sync-<N>.png``, ``.ico`` and ``.icns``."""
    from desktop.ui.app import application

    application()  # QPixmap needs a QGuiApplication
    out.mkdir(parents=True, exist_ok=True)
    pngs = {size: png_bytes(size) for size in sorted({*ICO_SIZES, *ICNS_TYPES, *PNG_SIZES})}
    written = {
        out / "market-sync.png": pngs[256],
        out / "market-sync.ico": ico({s: pngs[s] for s in ICO_SIZES}),
        out / "market-sync.icns": icns({s: pngs[s] for s in ICNS_TYPES}),
        **{out / f"market-sync-{s}.png": pngs[s] for s in PNG_SIZES},
    }
    for path, data in written.items():
        path.write_bytes(data)
    return list(written)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m desktop.ui.iconfiles OUT_DIR", file=sys.stderr)
        return 2
    for path in write_icon_files(Path(argv[0])):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
