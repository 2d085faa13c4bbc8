"""The benchmark harness itself runs: every figure on tiny sizes, one Markdown row each.

Not a benchmark (timing claims live in docs/benchmarks.md): the tiny sizes prove only that each
figure's code drives its real peers and reports. An anchor that is not installed here
(node_exporter, wrk) is reported as missing, which this test accepts.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIGURES = {
    "1": ("Agent RSS after", "Agent CPU per collection"),
    "2": ("Ingest: reports applied per second",),
    "3": ("SNMP: varbinds per second", "SNMP: one poll cycle over"),
    "4": ("Detection: process killed → P2 email, p50", "Detection: process killed → P2 email, p99"),
    "5": ("/metrics with", "Incident engine: one periodic tick over", "Patrol (shipped daily checklist) over",
          "Store size per 1,000 assets per day"),
}
VERDICTS = {"yes", "**no**", "anchor missing", "—"}


def test_a_quick_run_writes_a_row_with_a_verdict_for_every_figure(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    result = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(page)], cwd=ROOT,
                            capture_output=True, text=True, timeout=110, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    text = page.read_text(encoding="utf-8")
    assert "| date |" in text and "| Net-SNMP |" in text and "quick: tiny sizes" in text
    rows = [line for line in text.splitlines() if re.match(r"^\| [1-5] \| ", line)]
    for figure, measures in FIGURES.items():
        for measure in measures:
            row = next((r for r in rows if r.startswith(f"| {figure} | {measure}")), None)
            assert row is not None, f"no row for figure {figure}, {measure!r}:\n{text}"
            cells = [cell.strip() for cell in row.strip("|").split("|")]
            assert cells[-1] in VERDICTS, row
            assert cells[2] != "—" or cells[-1] == "anchor missing", f"figure {figure} measured nothing: {row}"
    assert len(rows) == sum(len(m) for m in FIGURES.values())
