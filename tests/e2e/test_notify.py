"""Notifications end to end: a real SMTP server and HTTP receivers, a real collector, real waits (short)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.notify_peers import HttpReceiver, Mailbox, Received
from tests.support import Collector, cli, set_secret, wait_until

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
MONDAY = "2026-01-05"  # a week where rotation[0] is on duty


def oncall_file(path: Path, smtp_port: int, *, policies: dict[str, Any], channels: list[dict[str, Any]] | None = None,
                chen_contacts: list[dict[str, Any]] | None = None) -> Path:
    data = {
        "timezone": "Asia/Shanghai",
        "people": [
            {"id": "wang.wei", "name": "王偉", "language": "zh-TW", "roles": ["on-call"],
             "contacts": [{"channel": "email", "address": "wang.wei@school.test"}]},
            {"id": "li.na", "name": "李娜", "language": "zh-CN", "roles": ["on-call"],
             "contacts": [{"channel": "email", "address": "li.na@school.test"}]},
            {"id": "liu.director", "name": "Director Liu", "language": "en", "roles": ["director"],
             "contacts": [{"channel": "email", "address": "liu@school.test"}]},
            {"id": "chen.jie", "name": "陳傑", "language": "zh-TW", "roles": ["on-call"],
             "contacts": chen_contacts or [{"channel": "email", "address": "chen@school.test"}]},
        ],
        "channels": [{"kind": "email", "id": "email", "host": "127.0.0.1", "port": smtp_port, "security": "none",
                      "sender": "schoolops@school.test"}, *(channels or [])],
        "schedule": {"handover": {"day": "mon", "time": "09:00"}, "start": MONDAY,
                     "rotation": [{"primary": "wang.wei", "backup": "li.na"}]},
        "escalation": {"policies": policies},
    }
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return path


def chain(**extra: Any) -> dict[str, Any]:
    policy = {"steps": [{"after": "0s", "notify": ["primary"]}, {"after": "3s", "notify": ["backup"]},
                        {"after": "6s", "notify": ["director"]}],
              "unacked_reminder": None, "owner_reminder": None, "progress_interval": None, "closing_summary": False}
    policy.update(extra)
    return policy


def start(start_collector: Callable[..., Collector], oncall: Path, **extra: Any) -> Collector:
    return start_collector(extra={"oncall_file": str(oncall),
                                  "incidents": {"tick_interval": "0.5s", "teaching_roles": []}, **extra})


def report(collector: Collector, text: str, severity: str = "P2", kind: str = "network") -> None:
    cli("report-fault", text, "--site", "main-building", "--type", kind, "--severity", severity, "--as", "zhang.teacher",
        "--config", str(collector.config_path))


def body(message: Any) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def fetch(url: str, method: str = "GET") -> tuple[int, str]:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with _DIRECT.open(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_escalation_by_email_stops_at_a_one_click_acknowledgement(
    start_collector: Callable[..., Collector], smtp: tuple[Mailbox, int], tmp_path: Path
) -> None:
    mailbox, port = smtp
    oncall = oncall_file(tmp_path / "oncall.yaml", port, policies={"P2": chain()})
    collector = start(start_collector, oncall)
    report(collector, "exam hall network down")

    first = wait_until(lambda: mailbox.to("wang.wei@school.test"), timeout=20, what="the primary's page")[0]
    assert "P2" in first["Subject"] and "重大" in first["Subject"]
    assert first["X-Schoolops-Severity"] == "P2" and first["Content-Language"] == "zh-TW"
    text = body(first)
    assert "main-building" in text and "reported by zhang.teacher" in text
    link = re.search(r"http://127\.0\.0\.1:\d+/ack/\S+", text)
    assert link, text

    second = wait_until(lambda: mailbox.to("li.na@school.test"), timeout=20, what="the backup after 3 s")[0]
    assert second["Content-Language"] == "zh-CN"

    status, page = fetch(link.group(0))
    assert status == 200 and "Acknowledge" in page  # a GET changes nothing
    status, page = fetch(link.group(0), "POST")
    assert status == 200 and "Acknowledged" in page
    assert fetch(link.group(0), "POST")[0] == 410  # works once
    forged = link.group(0)[:-6] + ("AAAAAA" if not link.group(0).endswith("AAAAAA") else "BBBBBB")
    assert fetch(forged, "POST")[0] == 403

    time.sleep(7)  # past the director's step
    assert mailbox.to("liu@school.test") == []
    incident = json.loads(cli("incidents", "list", "--json", "--config", str(collector.config_path)).stdout)[0]
    assert incident["state"] == "acknowledged" and incident["owner"] == "wang.wei"
    detail = json.loads(cli("incidents", "show", str(incident["id"]), "--json", "--config", str(collector.config_path)).stdout)
    delivered = [e for e in detail["timeline"] if e["kind"] == "delivered"]
    assert len(delivered) == 2 and "王偉" in delivered[0]["text"]


def test_a_collector_killed_mid_escalation_resumes_without_sending_twice(
    start_collector: Callable[..., Collector], smtp: tuple[Mailbox, int], tmp_path: Path
) -> None:
    mailbox, port = smtp
    oncall = oncall_file(tmp_path / "oncall.yaml", port, policies={
        "P2": chain(steps=[{"after": "0s", "notify": ["primary"]}, {"after": "4s", "notify": ["backup"]},
                           {"after": "9s", "notify": ["director"]}])})
    collector = start(start_collector, oncall)
    report(collector, "core switch down")
    wait_until(lambda: mailbox.to("wang.wei@school.test"), timeout=20, what="step 0")
    collector.kill()  # SIGKILL between steps
    time.sleep(5)  # step 1 falls due while it is down
    collector.start()
    wait_until(lambda: mailbox.to("liu@school.test"), timeout=30, what="step 2 after the restart")
    time.sleep(2)
    counts = {who: len(mailbox.to(who)) for who in ("wang.wei@school.test", "li.na@school.test", "liu@school.test")}
    assert counts == {"wang.wei@school.test": 1, "li.na@school.test": 1, "liu@school.test": 1}


def test_the_director_gets_progress_reports_until_resolution_then_a_summary(
    start_collector: Callable[..., Collector], smtp: tuple[Mailbox, int], tmp_path: Path
) -> None:
    mailbox, port = smtp
    policy = chain(steps=[{"after": "0s", "notify": ["primary"]}], progress_interval="3s", closing_summary=True)
    collector = start(start_collector, oncall_file(tmp_path / "oncall.yaml", port, policies={"P2": policy}))
    report(collector, "student records system down")
    wait_until(lambda: len(mailbox.to("liu@school.test")) >= 2, timeout=30, what="two progress reports")
    reports = mailbox.to("liu@school.test")
    assert reports[0]["Content-Language"] == "en" and "progress" in (reports[0]["Subject"] + body(reports[0])).lower()
    number = json.loads(cli("incidents", "list", "--json", "--config", str(collector.config_path)).stdout)[0]["id"]
    cli("incidents", "resolve", str(number), "--as", "wang.wei", "--note", "restarted the database", "--config",
        str(collector.config_path))
    summary = wait_until(lambda: [m for m in mailbox.to("liu@school.test") if "restarted the database" in body(m)],
                         timeout=20, what="the closing summary")
    count = len(mailbox.to("liu@school.test"))
    time.sleep(7)  # two more intervals: nothing more while resolved
    assert len(mailbox.to("liu@school.test")) == count
    assert summary


def dingtalk_answer(secret: str, seen: list[str]) -> Callable[[Received], tuple[int, dict[str, Any], dict[str, str]]]:
    def answer(got: Received) -> tuple[int, dict[str, Any], dict[str, str]]:
        query = urllib.parse.parse_qs(got.query)
        timestamp, sign = query["timestamp"][0], query["sign"][0]
        expected = base64.b64encode(hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest())
        if sign != expected.decode() or abs(time.time() * 1000 - int(timestamp)) > 3600_000:
            return 200, {"errcode": 310000, "errmsg": "sign not match"}, {}
        seen.append(got.json()["markdown"]["text"])
        return 200, {"errcode": 0, "errmsg": "ok"}, {}

    return answer


def test_robots_retry_on_429_fall_back_on_4xx_and_a_broken_channel_raises_a_fault(
    start_collector: Callable[..., Collector], smtp: tuple[Mailbox, int], tmp_path: Path
) -> None:
    mailbox, port = smtp
    answers = iter([429, 200])
    seen: list[str] = []

    def wecom(got: Received) -> tuple[int, dict[str, Any], dict[str, str]]:
        status = next(answers, 200)
        return (status, {"errcode": 0}, {"Retry-After": "1"}) if status == 429 else (200, {"errcode": 0}, {})

    with HttpReceiver(wecom) as wecom_rx, HttpReceiver(dingtalk_answer("SECtest", seen)) as ding_rx, \
            HttpReceiver(lambda got: (400, {"error": "unknown recipient"}, {})) as sms_rx:
        policy = chain(steps=[{"after": "0s", "notify": ["primary", "channel:wecom-ops", "channel:ding-ops", "person:chen.jie"]}])
        oncall = oncall_file(
            tmp_path / "oncall.yaml", port, policies={"P2": policy},
            channels=[{"kind": "wecom", "id": "wecom-ops", "url_secret": "wecom.url"},
                      {"kind": "dingtalk", "id": "ding-ops", "url_secret": "ding.url", "signing_secret": "ding.sec"},
                      {"kind": "webhook", "id": "sms", "url": sms_rx.url("/sms"), "signing_secret": "sms.sec"}],
            chen_contacts=[{"channel": "sms", "address": "+8613800000000"},
                           {"channel": "email", "address": "chen@school.test"}])
        collector = Collector(tmp_path / "collector", extra={
            "oncall_file": str(oncall), "incidents": {"tick_interval": "0.5s", "teaching_roles": []}})
        for name, value in (("wecom.url", wecom_rx.url("/cgi-bin/webhook/send?key=abc")),
                            ("ding.url", ding_rx.url("/robot/send?access_token=t")), ("ding.sec", "SECtest"),
                            ("sms.sec", "hush")):
            set_secret(collector, name, value)
        collector.start()
        try:
            report(collector, "library wifi down")
            wait_until(lambda: len(wecom_rx.snapshot()) >= 2, timeout=30, what="the WeCom retry after 429")
            assert "library wifi down" in wecom_rx.snapshot()[-1].json()["markdown"]["content"]
            wait_until(lambda: seen, timeout=20, what="a signed DingTalk message")
            assert "library wifi down" in seen[0]
            # chen's SMS gateway refuses (400): his next contact, email, gets it
            fallback = wait_until(lambda: mailbox.to("chen@school.test"), timeout=20, what="the fallback to email")
            assert "library wifi down" in body(fallback[0])
            signature = sms_rx.snapshot()[0].headers["X-Schoolops-Signature"]
            assert signature == "sha256=" + hmac.new(b"hush", sms_rx.snapshot()[0].body, hashlib.sha256).hexdigest()
            # and the broken channel is a fault of its own, never silent
            broken = wait_until(lambda: [i for i in json.loads(cli("incidents", "list", "--json", "--config",
                                                                   str(collector.config_path)).stdout)
                                         if "channel sms is broken" in i["title"]], timeout=20, what="a broken-channel fault")
            assert broken[0]["site"] == "schoolops"
            assert "abc" not in collector.process.log() and "SECtest" not in collector.process.log()  # type: ignore[union-attr]
        finally:
            collector.stop()


def test_a_burst_to_a_robot_is_merged_into_digests_within_its_rate_limit_and_nothing_is_lost(
    start_collector: Callable[..., Collector], smtp: tuple[Mailbox, int], tmp_path: Path
) -> None:
    _, port = smtp
    with HttpReceiver(lambda got: (200, {"errcode": 0}, {})) as robot:
        policy = chain(steps=[{"after": "0s", "notify": ["channel:wecom-ops"]}], group_wait="2s")
        oncall = oncall_file(tmp_path / "oncall.yaml", port, policies={"P3": policy},
                             channels=[{"kind": "wecom", "id": "wecom-ops", "url_secret": "wecom.url", "max_per_minute": 10}])
        collector = Collector(tmp_path / "collector", extra={
            "oncall_file": str(oncall), "incidents": {"tick_interval": "0.5s", "teaching_roles": []}})
        set_secret(collector, "wecom.url", robot.url("/cgi-bin/webhook/send?key=k"))
        collector.start()
        try:
            for n in range(50):
                cli("report-fault", f"classroom projector {n:02d} dark", "--site", "teaching-block", "--severity", "P3",
                    "--as", "teacher", "--config", str(collector.config_path))

            def covered() -> set[int]:
                text = " ".join(r.json()["markdown"]["content"] for r in robot.snapshot())
                return {n for n in range(50) if f"projector {n:02d} dark" in text}

            wait_until(lambda: len(covered()) == 50, timeout=50, what="all 50 faults delivered")
            posts = robot.snapshot()
            first_minute = [p for p in posts if p.at - posts[0].at < 60]
            assert len(first_minute) <= 10  # the channel's limit here (robots: 20 a minute)
            assert len(posts) < 50  # merged, not one post per fault
            assert all(len(p.json()["markdown"]["content"].encode()) <= 4096 for p in posts)
        finally:
            collector.stop()


def test_a_security_incident_starts_a_reporting_clock_that_reminds_the_director_until_reported(
    start_collector: Callable[..., Collector], smtp: tuple[Mailbox, int], tmp_path: Path
) -> None:
    mailbox, port = smtp
    oncall = oncall_file(tmp_path / "oncall.yaml", port, policies={"P2": chain(steps=[{"after": "0s", "notify": ["primary"]}])})
    data = yaml.safe_load(oncall.read_text())
    data["escalation"]["security"] = {"deadline": "4h", "reminder_interval": "2s"}
    oncall.write_text(yaml.safe_dump(data, allow_unicode=True))
    collector = start(start_collector, oncall)
    report(collector, "ransomware note found on the finance PC", kind="security")

    def clock_mails() -> list[Any]:
        return [m for m in mailbox.to("liu@school.test") if m["X-Schoolops-Kind"] == "security_clock"]

    first = wait_until(lambda: len(clock_mails()) >= 2, timeout=30, what="two reminders to report upward") and clock_mails()[0]
    assert "report" in (first["Subject"] + body(first)).lower()
    number = json.loads(cli("incidents", "list", "--json", "--config", str(collector.config_path)).stdout)[0]["id"]
    refused = cli("incidents", "security-reported", "999", "--reference", "x", "--config", str(collector.config_path), check=False)
    assert refused.returncode == 2
    cli("incidents", "security-reported", str(number), "--reference", "district CERT ticket 2026-118", "--as", "liu.director",
        "--config", str(collector.config_path))
    time.sleep(1)
    count = len(clock_mails())
    time.sleep(5)  # two more intervals: the reminders have stopped
    assert len(clock_mails()) == count
    detail = json.loads(cli("incidents", "show", str(number), "--json", "--config", str(collector.config_path)).stdout)
    assert any(e["kind"] == "security_reported" and "CERT ticket" in e["text"] for e in detail["timeline"])


def test_oncall_commands_show_who_is_on_duty(smtp: tuple[Mailbox, int], tmp_path: Path) -> None:
    _, port = smtp
    oncall = oncall_file(tmp_path / "oncall.yaml", port, policies={})
    now = json.loads(cli("oncall", "now", "--file", str(oncall), "--json").stdout)
    assert now["primary"]["id"] == "wang.wei" and now["backup"]["id"] == "li.na"
    week = json.loads(cli("oncall", "show", "--week", "--file", str(oncall), "--json").stdout)
    assert week and all(shift["primary_id"] == "wang.wei" and shift["backup_id"] == "li.na" for shift in week)
    broken = tmp_path / "broken.yaml"
    broken.write_text(oncall.read_text().replace("primary: wang.wei", "primary: nobody"))
    result = cli("oncall", "now", "--file", str(broken), check=False)
    assert result.returncode == 2 and str(broken) in result.stderr and "nobody" in result.stderr
