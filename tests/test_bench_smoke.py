"""The quick bench runs end to end and produces every figure. Behaviour only: the
figures depend on the machine, so no timing or ratio is asserted here."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_bench_produces_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(out),
         "--workdir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]

    result = json.loads(out.read_text())
    figures = result["figures"]
    assert sorted(figures) == ["a", "b", "c", "d", "e", "f"]
    for key, figure in figures.items():
        assert isinstance(figure["ratio"], float), key
        assert math.isfinite(figure["ratio"]) and figure["ratio"] > 0, (key, figure)
        assert isinstance(figure["ok"], bool), key
        assert f"({key})" in proc.stdout  # the printed table has the row

    syncs = result["syncs"]
    rows, small = result["rows"], result["small_rows"]
    for label, n in (("large", rows), ("small", small)):
        a, b = syncs[label]["a"], syncs[label]["b"]
        # (a): the new day copied straight in, the overlap day skipped by its content hash
        assert (a["rows_new"], a["rows_unchanged"], a["rows_diverged"]) == (n, n, 0)
        assert a["parts"] == {"skipped": 1, "copied": 1, "merged": 0}
        # (b): the corrected day merged, 1 % diverged
        assert (b["rows_new"], b["rows_unchanged"], b["rows_diverged"]) == (0, n - n // 100,
                                                                             n // 100)
        assert b["parts"] == {"skipped": 0, "copied": 0, "merged": 1}
        for sync in syncs[label].values():
            assert sync["peak_rss_mb"] > 0 and sync["apply_seconds"] > 0
    assert result["details"]["conflicts_saved"] == rows // 100
    fresh = result["details"]["fresh_depth"]  # (d) on the no-persistence extreme
    assert fresh["rows"] == rows and fresh["dump_bytes"] > 0 and fresh["pg_dump_bytes"] > 0
    assert "if no depth level persisted" in proc.stdout
