"""The tray icons, drawn with QPainter: one shape and one colour per state.

Each state differs in shape *and* colour (a colour-blind trader, a monochrome
panel), and every glyph has a dark outline and a white symbol, so it reads on
light and dark panels alike.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap, QPolygonF

from desktop.ui.viewmodel import TrayState

# Fill colours (mid-tones: enough contrast with both a white and a black panel).
COLOURS = {
    TrayState.UNKNOWN: "#7d8590",
    TrayState.STOPPED: "#6e7781",
    TrayState.TRANSITION: "#2f81f7",
    TrayState.HEALTHY: "#1f883d",
    TrayState.UNHEALTHY: "#d4a72c",
    TrayState.SYNCING: "#8250df",
    TrayState.ATTENTION: "#cf222e",
}

SIZES = (16, 22, 24, 32, 48, 64)


def state_pixmap(state: TrayState, size: int = 64, progress: float | None = None) -> QPixmap:
    """One icon bitmap; ``progress`` (0..1) draws the syncing ring's filled part."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.scale(size / 64, size / 64)
    _draw(painter, state, progress)
    painter.end()
    return pixmap


def state_icon(state: TrayState, progress: float | None = None) -> QIcon:
    icon = QIcon()
    for size in SIZES:
        icon.addPixmap(state_pixmap(state, size, progress))
    return icon


def _outline(fill: QColor) -> QPen:
    pen = QPen(fill.darker(190), 3.0)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return pen


def _symbol_pen(width: float = 6.0) -> QPen:
    pen = QPen(QColor("white"), width)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return pen


def _draw(p: QPainter, state: TrayState, progress: float | None) -> None:
    fill = QColor(COLOURS[state])
    p.setPen(_outline(fill))
    p.setBrush(QBrush(fill))
    if state is TrayState.STOPPED:
        # A rounded square with a white "stop" bar: the instance is off.
        p.drawRoundedRect(QRectF(6, 6, 52, 52), 10, 10)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor("white"))
        p.drawRoundedRect(QRectF(21, 21, 22, 22), 3, 3)
    elif state is TrayState.TRANSITION:
        # A circle with a white three-quarter arc and arrow head: on its way.
        p.drawEllipse(QRectF(5, 5, 54, 54))
        p.setPen(_symbol_pen(5.5))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawArc(QRectF(18, 18, 28, 28), 90 * 16, -270 * 16)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor("white"))
        p.drawPolygon(QPolygonF([QPointF(32, 10), QPointF(41, 18), QPointF(32, 26)]))
    elif state is TrayState.HEALTHY:
        # A circle with a white check mark.
        p.drawEllipse(QRectF(5, 5, 54, 54))
        p.setPen(_symbol_pen(6.5))
        path = QPainterPath(QPointF(19, 33))
        path.lineTo(28, 42)
        path.lineTo(45, 23)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawPath(path)
    elif state is TrayState.UNHEALTHY:
        # A diamond with a white heartbeat line: running, app not answering.
        p.drawPolygon(QPolygonF([QPointF(32, 3), QPointF(61, 32), QPointF(32, 61),
                                 QPointF(3, 32)]))
        p.setPen(_symbol_pen(5.0))
        p.setBrush(Qt.BrushStyle.NoBrush)
        path = QPainterPath(QPointF(14, 33))
        for x, y in ((24, 33), (29, 22), (35, 43), (40, 33), (50, 33)):
            path.lineTo(x, y)
        p.drawPath(path)
    elif state is TrayState.SYNCING:
        # A circle with a white down arrow and, outside, the progress ring.
        p.drawEllipse(QRectF(9, 9, 46, 46))
        p.setPen(_symbol_pen(5.5))
        p.drawLine(QPointF(32, 19), QPointF(32, 42))
        path = QPainterPath(QPointF(22, 33))
        path.lineTo(32, 43)
        path.lineTo(42, 33)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawPath(path)
        track = QPen(fill.darker(190), 4.0)
        p.setPen(track)
        p.drawEllipse(QRectF(3, 3, 58, 58))
        if progress is not None:
            ring = QPen(QColor("#b48efa"), 4.0)
            ring.setCapStyle(Qt.PenCapStyle.FlatCap)
            p.setPen(ring)
            span = -int(360 * 16 * max(0.0, min(1.0, progress)))
            p.drawArc(QRectF(3, 3, 58, 58), 90 * 16, span)
    elif state is TrayState.ATTENTION:
        # A triangle with a white exclamation mark.
        p.drawPolygon(QPolygonF([QPointF(32, 4), QPointF(61, 57), QPointF(3, 57)]))
        p.setPen(_symbol_pen(6.5))
        p.drawLine(QPointF(32, 22), QPointF(32, 38))
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor("white"))
        p.drawEllipse(QPointF(32, 48), 4, 4)
    else:
        # Unknown: a hollow circle with a white question dot pattern (three dots).
        p.drawEllipse(QRectF(5, 5, 54, 54))
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor("white"))
        for i in range(3):
            angle = math.pi * (0.5 + i * 2 / 3)
            p.drawEllipse(QPointF(32 + 12 * math.cos(angle), 32 - 12 * math.sin(angle)), 5, 5)
