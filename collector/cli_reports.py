"""``schoolops report monthly``: the director's monthly report, from the store, as Markdown, HTML or JSON.

The month is the previous one in the school's time zone (the on-call file's; UTC without one)
unless ``--month`` names another; a month still under way is reported up to now. ``--format text``
prints the message the director receives on the 1st.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from collector.cli import UsageError, _settings, query, store_options

FORMATS = ("md", "html", "json", "text")
LANGUAGES = ("en", "zh-CN", "zh-TW")


def monthly_report(settings: Any, month: str | None, language: str | None, now: float) -> Any:
    """The built report of ``month`` (default: the previous month) from the configured store and files."""
    from collector.calendar import SchoolCalendar
    from collector.notify.oncall import directors, load_oncall
    from collector.patrol.loader import load_checklists
    from collector.reports import figures, monthly
    from collector.rules.loader import load_rules
    from collector.store.monthly import month_data

    oncall = load_oncall(settings.oncall_file) if settings.oncall_file else None
    tz = oncall.timezone if oncall else "UTC"
    month = month or figures.previous_month(now, tz)
    try:
        start, end = figures.month_bounds(month, tz)
    except ValueError as exc:
        raise UsageError(f"--month: {exc}") from None
    if start > now:
        raise UsageError(f"--month: {month} has not begun yet")
    bosses = directors(oncall) if oncall else []
    rules = monthly.down_rules(load_rules(settings.rules_path))
    data = query(settings, lambda c: month_data(c, start, end, as_of=now, directors={p.id for p in bosses},
                                                down_rules=rules))
    folder = settings.runbooks_path / "patrol"
    checklists = load_checklists(folder) if folder.is_dir() else {}
    calendar = SchoolCalendar.load(settings.calendar_file) if settings.calendar_file else SchoolCalendar.default()
    names = {person.id: person.name for person in oncall.people} if oncall else {}
    language = language or (bosses[0].language.value if bosses else "zh-CN")
    return monthly.build(data, month=month, language=language, tz=tz, names=names, checklists=checklists,
                         calendar=calendar)


def render(report: Any, fmt: str) -> str:
    from collector.reports import monthly

    if fmt == "json":
        return json.dumps(monthly.to_json(report), ensure_ascii=False, indent=2) + "\n"
    if fmt == "html":
        return monthly.to_html(report)
    if fmt == "text":
        subject, text = monthly.summary_message(report)
        return f"{subject}\n\n{text}\n"
    return monthly.to_markdown(report)


def cmd_monthly(args: argparse.Namespace) -> int:
    report = monthly_report(_settings(args), args.month, args.language, time.time())
    text = render(report, args.format)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        print(text, end="" if text.endswith("\n") else "\n")
    return 0


def register(sub: Any, command: Callable[..., argparse.ArgumentParser]) -> None:
    report = sub.add_parser("report", help="reports for people: the director's monthly report").add_subparsers(
        dest="report_command", required=True, metavar="KIND")
    p = command("monthly", cmd_monthly, "the monthly report: availability of key services, incidents, escalations "
                "to the director, patrol completion, preventive measures", report)
    p.add_argument("--month", help="YYYY-MM (default: the previous month in the school's time zone)")
    p.add_argument("--format", choices=FORMATS, default="md",
                   help="md, html (printable A4), json, or text (the director's message)")
    p.add_argument("-o", "--output", help="write to this file")
    p.add_argument("--language", choices=LANGUAGES, help="default: the director's language (else zh-CN)")
    store_options(p)
