"""python -m bench [--quick] [--runs N] [--only 1,2,…] [--out FILE]: measure, print, write the Markdown page.

Figures (the issue's numbering): 1 agent footprint, 2 ingest, 3 SNMP, 4 detection latency, 5 scale.
``--quick`` runs every figure on tiny sizes (the smoke test) and writes its page to the scratch
the page instead of writing it unless ``--out`` names a file; a full run writes ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import detection, footprint, ingest, report, scale, snmp
from bench.core import ROOT, Row, Sizes, Workdir
from bench.profiling import Profiler

FIGURES: dict[str, tuple[str, object]] = {
    "1": ("1. Agent footprint", footprint),
    "2": ("2. Ingest", ingest),
    "3": ("3. SNMP", snmp),
    "4": ("4. Detection latency", detection),
    "5": ("5. Scale", scale),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: proves the harness runs, measures nothing")
    parser.add_argument("--runs", type=int, help="runs per figure (default 5; 1 with --quick)")
    parser.add_argument("--only", default=",".join(FIGURES), help="figures to run, e.g. 2,3 (default: all)")
    parser.add_argument("--out", type=Path, help="the Markdown page (default docs/benchmarks.md; with --quick, "
                                                 "printed)")
    parser.add_argument("--agent-python", help="the interpreter that runs the agent in figure 1 (default: "
                                               ".venv-agent's, made by scripts/bench.sh, else this one)")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="sample the measured processes with py-spy "
                                                                    "and write their hot functions here")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs, configs, databases)")
    args = parser.parse_args(argv)
    runs = args.runs or (1 if args.quick else 5)
    sizes = Sizes.for_run(runs, args.quick)
    chosen = [f.strip() for f in args.only.split(",") if f.strip()]
    unknown = [f for f in chosen if f not in FIGURES]
    if unknown:
        parser.error(f"--only: no figure {', '.join(unknown)} (figures: {', '.join(FIGURES)})")

    work = Workdir(Path(tempfile.mkdtemp(prefix="schoolops-bench-")), keep=args.keep)
    out = args.out or (None if args.quick else ROOT / "docs" / "benchmarks.md")
    profiler = Profiler(args.profile)
    rows: list[Row] = []
    sections: list[report.Section] = []
    failed = False
    try:
        for key in chosen:
            title, module = FIGURES[key]
            print(f"== {title}", flush=True)
            started = time.monotonic()
            measure: Callable[..., list[Row]] = module.measure  # type: ignore[attr-defined]
            try:
                extra = {"requested_python": args.agent_python} if module is footprint else {}
                figure_rows = measure(sizes, work, profiler, **extra)
            except Exception as exc:  # noqa: BLE001 - a broken figure is reported, and the others still run
                traceback.print_exc()
                failed = True
                figure_rows = [Row(key, f"{title}: the harness failed", "", note=f"error: {exc!r}"[:500])]
            for row in figure_rows:
                print("  " + report.line(row), flush=True)
            rows += figure_rows
            sections.append(report.Section(title, module.__doc__ or "", time.monotonic() - started))  # type: ignore[attr-defined]
        command = "python -m bench" + (" --quick" if args.quick else "") + (f" --runs {runs}" if args.runs else "")
        text = report.page(rows, sections, runs, args.quick, command)
        if out is None:
            print(text)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text, encoding="utf-8")
            print(f"wrote {out}")
    finally:
        if args.keep:
            print(f"scratch folder kept: {work.path}")
        else:
            shutil.rmtree(work.path, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
