"""Windows that grow to show what they hold: no table column cut off at the default size."""

from __future__ import annotations

from PySide6.QtWidgets import QTableView, QWidget


def fit_table_width(window: QWidget, view: QTableView) -> None:
    """Widen ``window`` until every column of ``view`` fits (within the screen)."""
    header = view.horizontalHeader()
    columns = sum(header.sectionSize(c) for c in range(header.count()))
    extra = window.width() - view.viewport().width()
    need = columns + extra + view.frameWidth() * 2 + 4
    screen = window.screen()
    limit = max(screen.availableGeometry().width() - 40, 1280) if screen is not None else need
    if window.width() < need:
        window.resize(min(need, limit), window.height())
