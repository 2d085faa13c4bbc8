"""The web pages in a real browser (Debian's headless chromium, driven through chromedriver): an on-call
person logs in, acknowledges an incident, writes its RCA and closes it; a viewer is refused the
acknowledgement; an admin logs in with a TOTP code; the director reads and exports the audit log.
Screenshots go to the test's folder (and to $SCHOOLOPS_TEST_ARTIFACTS when set)."""

from __future__ import annotations

import csv
import http.cookiejar
import io
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest

from tests.browser import browser_session
from tests.support import Collector, cli, people_file, wait_until

pytestmark = pytest.mark.peers
PASSWORD = "correct horse battery staple"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Collector]:
    people = people_file(tmp_path / "oncall.yaml", {
        "li.na": ["on-call"], "chen.jie": ["on-call"], "view.er": ["viewer"], "liu.director": ["director"],
        "ad.min": ["admin"]})
    collector = Collector(tmp_path / "collector", extra={"oncall_file": str(people),
                                                         "incidents": {"tick_interval": "0.5s"}}).start()
    try:
        for person in ("li.na", "view.er", "liu.director", "ad.min"):
            set_password(collector, person, PASSWORD)
        yield collector
    finally:
        collector.stop()


def set_password(collector: Collector, person: str, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collector", "user", "passwd", person, "--config",
                           str(collector.config_path)], input=password, text=True, capture_output=True, timeout=60,
                          check=False)


def open_incident(collector: Collector, text: str) -> int:
    config = ["--config", str(collector.config_path)]
    cli("report-fault", text, "--site", "library", "--severity", "P3", "--type", "network", *config)
    found = wait_until(lambda: [i for i in json.loads(cli("incidents", "list", "--json", *config).stdout)
                                if text in i["title"] or text in i["reason"]], timeout=30, what="the incident")
    return int(found[0]["id"])


def shoot(browser: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    browser.save_screenshot(str(path))
    assert path.stat().st_size > 1000
    artifacts = os.environ.get("SCHOOLOPS_TEST_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(artifacts) / path.name)


def click(browser: Any, by: str, value: str) -> None:
    """Click what submits a form or follows a link, and wait (bounded) until the next page has loaded."""
    from selenium.common.exceptions import WebDriverException

    browser.execute_script("window.__leaving = true")
    browser.find_element(by, value).click()

    def arrived() -> bool:
        try:
            return bool(browser.execute_script(
                "return window.__leaving === undefined && document.readyState === 'complete'"))
        except WebDriverException:  # between two pages
            return False

    wait_until(arrived, timeout=15, interval=0.05, what=f"the page after clicking {value}")


def log_in(browser: Any, collector: Collector, person: str, password: str = PASSWORD) -> None:
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    browser.get(f"{collector.url}/incidents")
    assert "/login" in browser.current_url
    browser.find_element(By.NAME, "person").send_keys(person)
    browser.find_element(By.NAME, "password").send_keys(password)
    click(browser, By.ID, "login")


def audit(collector: Collector) -> list[dict[str, Any]]:
    import sqlite3

    with sqlite3.connect(collector.directory / "data" / "schoolops.db") as conn:
        rows = conn.execute("SELECT actor, action, target, detail FROM audit_log ORDER BY id").fetchall()
    return [{"actor": a, "action": b, "target": c, "detail": d} for a, b, c, d in rows]


def test_on_call_works_an_incident_to_closed_and_a_viewer_cannot_acknowledge(site: Collector, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    number = open_incident(site, "library switch down")
    with browser_session() as browser:
        # the on-call person: log in, find the incident, acknowledge it, write the RCA, resolve, close
        log_in(browser, site, "li.na")
        assert browser.current_url.endswith("/incidents")
        click(browser, By.LINK_TEXT, str(number))
        assert browser.find_element(By.ID, "state").text == "open"
        browser.find_element(By.NAME, "note").send_keys("on my way to the library")
        click(browser, By.ID, "act-acknowledge")
        assert browser.find_element(By.ID, "state").text == "acknowledged"
        assert "on my way to the library" in browser.page_source
        browser.find_element(By.ID, "rca-text").send_keys("the uplink's SFP module failed")
        browser.find_element(By.ID, "measure-0").send_keys("keep a spare SFP module in the server room")
        browser.find_element(By.ID, "measure-owner-0").send_keys("li.na")
        browser.execute_script("document.getElementById('measure-due-0').value = '2026-12-31'")
        click(browser, By.ID, "save-rca")
        assert browser.find_element(By.ID, "rca").text == "the uplink's SFP module failed"
        assert "keep a spare SFP module in the server room" in browser.page_source
        shoot(browser, tmp_path, "incident-acknowledged")
        click(browser, By.ID, "act-resolve")
        assert browser.find_element(By.ID, "state").text == "resolved"
        click(browser, By.ID, "act-close")
        assert browser.find_element(By.ID, "state").text == "closed"
        shoot(browser, tmp_path, "incident-closed")
        detail = json.loads(cli("incidents", "show", str(number), "--json", "--config", str(site.config_path)).stdout)
        assert detail["state"] == "closed" and detail["acknowledged_by"] == "li.na" and detail["closed_by"] == "li.na"
        assert detail["rca"] == "the uplink's SFP module failed"

        # the on-call person may not read the audit log
        browser.get(f"{site.url}/audit")
        assert "may not do this" in browser.page_source

        # a viewer sees the incidents but no action, and a forged acknowledgement is refused
        other = open_incident(site, "printer offline in room 204")
        log_in(browser, site, "view.er")
        browser.get(f"{site.url}/incidents/{other}")
        assert browser.find_elements(By.ID, "act-acknowledge") == []
        assert browser.find_element(By.ID, "state").text == "open"
        csrf = browser.find_element(By.CSS_SELECTOR, "form[action='/logout'] input[name=csrf]").get_attribute("value")
        browser.execute_script("""
            const form = document.createElement('form'); form.method = 'post'; form.action = arguments[0];
            for (const [k, v] of [['csrf', arguments[1]], ['action', 'acknowledge']]) {
              const input = document.createElement('input'); input.name = k; input.value = v; form.appendChild(input); }
            document.body.appendChild(form); form.submit();""", f"/incidents/{other}/act", csrf)
        wait_until(lambda: "may not do this" in browser.page_source, timeout=10, what="the refusal page")
        shoot(browser, tmp_path, "viewer-refused")
        detail = json.loads(cli("incidents", "show", str(other), "--json", "--config", str(site.config_path)).stdout)
        assert detail["state"] == "open" and detail["acknowledged_by"] is None

        # a wrong password is refused and recorded; the pages stay closed
        log_in(browser, site, "li.na", "not the password at all")
        assert "wrong person or password" in browser.page_source and "/login" in browser.current_url

    entries = audit(site)
    actions = [(e["actor"], e["action"]) for e in entries]
    assert ("li.na", "login") in actions and ("view.er", "login") in actions and ("li.na", "login.failed") in actions
    assert not any("not the password" in e["detail"] or PASSWORD in e["detail"] for e in entries)


def http_session(collector: Collector) -> Any:
    jar = http.cookiejar.CookieJar()
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), urllib.request.ProxyHandler({}))


def post(opener: Any, url: str, fields: dict[str, str]) -> tuple[int, str, str]:
    try:
        with opener.open(url, urllib.parse.urlencode(fields).encode(), timeout=10) as response:
            return response.status, response.url, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, url, exc.read().decode()


def get(opener: Any, url: str) -> tuple[int, str, str]:
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, response.url, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, url, exc.read().decode()


def test_an_admin_needs_a_totp_code_and_each_code_works_once(site: Collector) -> None:
    config = ["--config", str(site.config_path)]
    opener = http_session(site)
    status, _, page = post(opener, f"{site.url}/login", {"person": "ad.min", "password": PASSWORD})
    assert status == 401 and "second factor" in page  # the role needs one; none enrolled yet
    enrolled = cli("user", "totp", "ad.min", *config).stdout
    secret = re.search(r"secret: ([A-Z2-7]+)", enrolled).group(1)  # type: ignore[union-attr]
    assert "otpauth://totp/" in enrolled

    status, url, _ = post(opener, f"{site.url}/login", {"person": "ad.min", "password": PASSWORD, "next": "/audit"})
    assert url.startswith(f"{site.url}/login/second-factor")
    assert get(opener, f"{site.url}/audit")[1].startswith(f"{site.url}/login/second-factor")  # not in yet
    status, url, _ = post(opener, f"{site.url}/login/second-factor", {"code": "000000", "next": "/audit"})
    assert "wrong" in urllib.parse.unquote(url)
    code = pyotp.TOTP(secret).now()
    status, url, page = post(opener, f"{site.url}/login/second-factor", {"code": code, "next": "/audit"})
    assert status == 200 and url == f"{site.url}/audit" and "login" in page

    again = http_session(site)
    post(again, f"{site.url}/login", {"person": "ad.min", "password": PASSWORD})
    status, url, _ = post(again, f"{site.url}/login/second-factor", {"code": code})
    assert "wrong or already used" in urllib.parse.unquote(url)  # the same code a second time


def test_wrong_passwords_lock_the_login_and_passwords_follow_the_rules(site: Collector) -> None:
    weak = set_password(site, "li.na", "short")
    assert weak.returncode == 2 and "too short" in weak.stderr
    unknown = set_password(site, "nobody", PASSWORD)
    assert unknown.returncode == 2 and "not in the on-call file" in unknown.stderr
    opener = http_session(site)
    for _ in range(5):
        assert post(opener, f"{site.url}/login", {"person": "li.na", "password": "wrong password here"})[0] == 401
    status, _, page = post(opener, f"{site.url}/login", {"person": "li.na", "password": PASSWORD})
    assert status == 401 and "try again after" in page
    cli("user", "unlock", "li.na", "--config", str(site.config_path))
    status, url, _ = post(opener, f"{site.url}/login", {"person": "li.na", "password": PASSWORD})
    assert status == 200 and url == f"{site.url}/incidents"


def test_the_director_reads_and_exports_the_audit_log(site: Collector) -> None:
    opener = http_session(site)
    post(opener, f"{site.url}/login", {"person": "liu.director", "password": PASSWORD})
    status, _, page = get(opener, f"{site.url}/audit?action=login")
    assert status == 200 and "liu.director" in page
    status, _, report = get(opener, f"{site.url}/reports")
    assert status == 200 and "<table" in report and "@page" in report  # the printable monthly report
    assert get(opener, f"{site.url}/reports?month=2999-01")[0] == 422
    status, _, text = get(opener, f"{site.url}/audit.csv?days=1")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert status == 200 and any(r["actor"] == "liu.director" and r["action"] == "login" for r in rows)
    assert any(r["action"] == "user.passwd" and r["target"] == "person:li.na" for r in rows)
    assert ("liu.director", "audit.export") in {(e["actor"], e["action"]) for e in audit(site)}
    # a form without the session's CSRF token is refused
    status, _, _ = post(opener, f"{site.url}/maintenance", {"assets": "web-01", "hours": "1", "reason": "x"})
    assert status == 403
    # logging out ends the session: the old cookie opens nothing
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    post(opener, f"{site.url}/logout", {"csrf": csrf})
    assert get(opener, f"{site.url}/audit")[1].startswith(f"{site.url}/login")

