"""The import rules of DESIGN.md and STYLE.md, checked on the source itself.

* ``shared``, ``ec2``, ``installer`` and ``desktop/`` outside ``desktop/ui/`` never import
  PySide6: the engine works without Qt.
* The command lines and the config start light: boto3, botocore, psycopg and PySide6 are
  imported only when a command needs them.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
QT_FREE_PACKAGES = ("shared", "ec2", "installer", "desktop")
QT_LAYER = ROOT / "desktop" / "ui"
HEAVY = ("boto3", "botocore", "psycopg", "PySide6")
LIGHT_MODULES = ("desktop.cli", "ec2.cli", "shared.config")


def _is_pyside(module: str) -> bool:
    return module == "PySide6" or module.startswith("PySide6.")


def pyside_imports(source: str, filename: str = "<source>") -> list[int]:
    """Line numbers where ``source`` imports PySide6 (statements, ``__import__`` and
    ``importlib.import_module`` with a literal name)."""
    lines = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            if any(_is_pyside(alias.name) for alias in node.names):
                lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and _is_pyside(node.module):
                lines.append(node.lineno)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if (name in ("import_module", "__import__") and isinstance(first, ast.Constant)
                    and isinstance(first.value, str) and _is_pyside(first.value)):
                lines.append(node.lineno)
    return sorted(lines)


def qt_free_files() -> list[Path]:
    files = []
    for package in QT_FREE_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if not path.is_relative_to(QT_LAYER):
                files.append(path)
    return files


def test_the_scan_finds_every_pyside_import_form() -> None:
    source = ("import PySide6\n"
              "from PySide6.QtCore import QObject\n"
              "import os, PySide6.QtWidgets as w\n"
              "def f():\n    import importlib\n    importlib.import_module('PySide6.QtGui')\n"
              "__import__('PySide6')\n"
              "import PySide6_fake\nfrom . import PySide6\n")

    assert pyside_imports(source) == [1, 2, 3, 6, 7]


def test_the_scan_covers_every_qt_free_package() -> None:
    files = qt_free_files()

    for package in QT_FREE_PACKAGES:
        assert any(f.is_relative_to(ROOT / package) for f in files), package
    assert not any(f.is_relative_to(QT_LAYER) for f in files)


def test_no_module_outside_desktop_ui_imports_pyside6() -> None:
    offenders = {
        str(path.relative_to(ROOT)): found
        for path in qt_free_files()
        if (found := pyside_imports(path.read_text(encoding="utf-8"), str(path)))
    }

    assert offenders == {}


_PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
heavy = json.loads(sys.argv[2])
print(json.dumps(sorted(m for m in sys.modules
                        if any(m == h or m.startswith(h + ".") for h in heavy))))
"""


def _heavy_modules_after_importing(module: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, module, json.dumps(HEAVY)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def test_the_probe_sees_a_heavy_import() -> None:
    assert "boto3" in _heavy_modules_after_importing("boto3")


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_importing_starts_without_boto3_psycopg_or_pyside6(module: str) -> None:
    assert _heavy_modules_after_importing(module) == []


# -- no import cycles between modules of desktop/ -------------------------------------------
DESKTOP = ROOT / "desktop"


def _module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported(node: ast.AST, package: str, known: set[str]) -> set[str]:
    """The desktop modules one import statement names: statements anywhere (inside
    functions and ``if TYPE_CHECKING:`` too) and ``importlib.import_module("literal")``."""
    names: set[str] = set()
    if isinstance(node, ast.Import):
        names = {alias.name for alias in node.names}
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        names = {f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                 for alias in node.names}
    elif isinstance(node, ast.Call) and node.args:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        first = node.args[0]
        if (name in ("import_module", "__import__") and isinstance(first, ast.Constant)
                and isinstance(first.value, str)):
            names = {first.value}
    found = set()
    for name in names:  # ``import desktop.ui.app`` also names desktop.ui: keep the deepest
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name:
            found.add(name)
    return found


def import_graph(root: Path = DESKTOP) -> dict[str, set[str]]:
    files = sorted(root.rglob("*.py"))
    known = {_module_name(f, root.parent) for f in files}
    graph: dict[str, set[str]] = {}
    for path in files:
        module = _module_name(path, root.parent)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            edges |= _imported(node, package, known)
        edges.discard(module)
        graph[module] = edges
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


def test_the_cycle_scan_sees_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "desktop"
    (pkg / "ui").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "ui" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from desktop.ui import b\n")
    (pkg / "ui" / "b.py").write_text("from typing import TYPE_CHECKING\n"
                                     "if TYPE_CHECKING:\n    from desktop.c import X\n")
    (pkg / "c.py").write_text("import importlib\nimportlib.import_module('desktop.a')\n")
    (pkg / "d.py").write_text("from . import a\n")

    graph = import_graph(pkg)

    assert graph["desktop.d"] == {"desktop.a"}
    assert import_cycles(graph) == [["desktop.a", "desktop.c", "desktop.ui.b"]]


def test_no_import_cycles_between_desktop_modules() -> None:
    assert import_cycles(import_graph()) == []
