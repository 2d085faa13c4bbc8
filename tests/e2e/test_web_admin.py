"""The web pages that do what only the CLI and the API did: a patrol run and a runbook run started by
hand, the admin's page of logins (passwords, TOTP second factors with their QR code, locks), and
the signed link in the director's monthly report. One real collector process for the module, with
a real SMTP server, an on-call file and logins; plain HTTP with a cookie jar, and one browser at a
phone's width at the end.

The store is seeded before the collector starts: the asset existed last month (so last month's
report is due and sent at start) and the logins the tests begin with."""

from __future__ import annotations

import asyncio
import html
import re
import sqlite3
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
import yaml

from tests.e2e.test_web import get, http_session, shoot
from tests.notify_peers import Mailbox, smtp_server
from tests.support import Collector, http_get, people_file, wait_until

pytestmark = pytest.mark.peers
PASSWORD = "correct horse battery staple"
HOST, SWITCH, PORT = "lab-pc-13", "access-sw-3", "GigabitEthernet1/0/13"
PEOPLE = {"ad.min": ["admin"], "li.na": ["on-call"], "chen.jie": ["on-call"], "op.erator": ["operator"],
          "zhao.lock": ["operator"], "view.er": ["viewer"], "liu.director": ["director"], "kim.director": ["director"]}
WITH_PASSWORD = ("ad.min", "li.na", "op.erator", "zhao.lock", "view.er", "liu.director")  # chen.jie: none yet


@dataclass
class Office:
    collector: Collector
    mailbox: Mailbox
    admin_secret: str
    admin: Any  # the admin's logged-in HTTP session

    @property
    def url(self) -> str:
        return self.collector.url

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.collector.directory / "data" / "schoolops.db") as conn:
            return conn.execute(sql, args).fetchall()

    def audit(self, action: str) -> list[tuple[str, str, str]]:
        return [tuple(r) for r in self.rows(  # type: ignore[misc]
            "SELECT actor, target, detail FROM audit_log WHERE action = ? ORDER BY id", action)]

    def log_in(self, person: str, password: str = PASSWORD) -> Any:
        opener = http_session(self.collector)
        status, url, _ = post(opener, f"{self.url}/login", {"person": person, "password": password})
        assert status == 200 and url == f"{self.url}/incidents", (person, status, url)
        return opener


def post(opener: Any, url: str, fields: dict[str, str]) -> tuple[int, str, str]:
    """A form sent as a browser sends it, with the page it is on as the Referer (where a refused change
    sends people back to, with the reason); the answer after redirects: (status, final URL, body)."""
    split = urllib.parse.urlsplit(url)
    found = re.match(r"/users/[^/]+|/patrol|/runbooks", split.path)
    page = f"{split.scheme}://{split.netloc}{found.group(0) if found else split.path}"
    request = urllib.request.Request(url, urllib.parse.urlencode(fields).encode(), headers={"Referer": page})
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.url, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, url, exc.read().decode()


def csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def flash(url: str) -> str:
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    return (query.get("ok") or query.get("error") or [""])[0]


def school_timezone(now: float) -> str:
    """A time zone where last month's report is due now (not the 1st before 08:00 there)."""
    from collector.reports.schedule import due_month

    return next(tz for tz in ("Asia/Shanghai", "UTC", "America/Los_Angeles") if due_month(None, now, tz))


def seed(collector: Collector, now: float) -> str:
    """Before the first start: the asset recorded 40 days ago, the logins, the admin's TOTP secret."""
    from collector.auth import accounts
    from collector.secrets import SecretBox
    from collector.store import InventoryAsset
    from collector.store.sql import SqlStore, sqlite_url, sync_inventory

    data = collector.directory / "data"
    data.mkdir(mode=0o700)
    store = SqlStore.open(sqlite_url(data / "schoolops.db"))
    hashed = accounts.hash_new_password(PASSWORD, "someone")
    box = SecretBox(data / "secret.key")

    def write(conn: Any) -> str:
        sync_inventory(conn, [InventoryAsset(HOST, "server", "lab-building", "", "normal", ())], now - 40 * 86400)
        for person in WITH_PASSWORD:
            accounts.set_password(conn, person, hashed, actor="test", now=now)
        secret = accounts.enrol_totp(conn, box, "ad.min", actor="test", now=now)
        assert secret is not None
        return secret

    try:
        return store.run_sync(write)
    finally:
        asyncio.run(store.close())


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Office]:
    tmp = tmp_path_factory.mktemp("web-admin")
    now = time.time()
    with smtp_server() as (mailbox, smtp_port):
        oncall = people_file(tmp / "oncall.yaml", PEOPLE, languages={"liu.director": "zh-TW"}, smtp_port=smtp_port)
        document = yaml.safe_load(oncall.read_text())
        document["timezone"] = school_timezone(now)
        oncall.write_text(yaml.safe_dump(document, sort_keys=False))
        inventory = tmp / "inventory.yaml"
        inventory.write_text(yaml.safe_dump({"assets": [
            {"name": HOST, "kind": "server", "site": "lab-building", "labels": {"switch": SWITCH, "switch_port": PORT}},
            {"name": SWITCH, "kind": "network", "site": "lab-building", "address": "127.0.0.1"}]}))
        collector = Collector(tmp / "collector", extra={
            "oncall_file": str(oncall), "inventory_file": str(inventory), "runbooks": {"tick_interval": "0.5s"},
            "patrol": {"tick_interval": "0.5s"}})
        secret = seed(collector, now)
        collector.start()
        try:
            admin = http_session(collector)
            status, url, _ = post(admin, f"{collector.url}/login", {"person": "ad.min", "password": PASSWORD})
            assert url.startswith(f"{collector.url}/login/second-factor"), (status, url)
            status, url, _ = post(admin, f"{collector.url}/login/second-factor", {"code": pyotp.TOTP(secret).now()})
            assert status == 200 and url == f"{collector.url}/incidents", url
            yield Office(collector, mailbox, secret, admin)
        finally:
            collector.stop()


# --- the monthly report's signed link --------------------------------------------------------------


def monthly_link(mailbox: Mailbox, address: str, subject: str) -> str:
    mail = wait_until(lambda: [m for m in mailbox.to(address) if subject in str(m["Subject"])], timeout=30,
                      what=f"the monthly report to {address}")[0]
    text = mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    return re.search(r"(http://\S+/reports/monthly/\S+)", text).group(1)  # type: ignore[union-attr]


def test_the_monthly_report_mail_links_to_the_printable_report_in_each_directors_language(office: Office) -> None:
    from collector.reports.reportweb import report_link

    chinese = monthly_link(office.mailbox, "liu.director@school.test", "運維月報")
    english = monthly_link(office.mailbox, "kim.director@school.test", "[Monthly report]")
    month = re.search(r"/reports/monthly/(\d{4}-\d{2})\?", english).group(1)  # type: ignore[union-attr]
    assert "lang=zh-TW" in chinese and "lang=en" in english and f"/reports/monthly/{month}?" in chinese

    # opened without logging in: the month's report, printable, in the reader's language
    status, body = http_get(chinese)
    page = body.decode()
    assert status == 200 and 'lang="zh-TW"' in page and "運維月報" in page and "@page" in page
    status, body = http_get(english)
    assert status == 200 and 'lang="en"' in body.decode() and f"Monthly operations report {month}" in body.decode()

    # another month or language, or a cut signature: 403; an expired link: 410
    year, number = map(int, month.split("-"))
    other = f"{year - 1}-{number:02d}"
    assert http_get(english.replace(f"/monthly/{month}?", f"/monthly/{other}?"))[0] == 403
    assert http_get(english.replace("lang=en", "lang=zh-CN"))[0] == 403
    assert http_get(english[:-4])[0] == 403
    key = (office.collector.directory / "data" / "link.key").read_bytes()
    expired = report_link(office.url, key, month, "en", time.time() - 31 * 86400)
    status, body = http_get(expired)
    assert status == 410 and "expired" in body.decode()
    assert http_get(report_link(office.url, key, month, "en", time.time()))[0] == 200  # the same link, fresh


# --- logins: the admin's page ----------------------------------------------------------------------


def qr_modules(page: str) -> set[tuple[int, int]]:
    """The dark modules of the page's QR code, from the inline SVG's path (moves and horizontal runs)."""
    svg = re.search(r"<svg\b.*?</svg>", page, re.DOTALL).group(0)  # type: ignore[union-attr]
    path = re.search(r'<path class="qrline"[^>]*? d="([^"]+)"', svg).group(1)  # type: ignore[union-attr]
    x = y = 0.0
    dark: set[tuple[int, int]] = set()
    for command, args in re.findall(r"([MmHh])([-\d. ]+)", path):
        values = [float(v) for v in args.split()]
        if command == "M":
            x, y = values
        elif command == "m":
            x, y = x + values[0], y + values[1]
        else:
            dark.update((int(x) + n, int(y)) for n in range(int(values[0])))
            x += values[0]
    return dark


def encodes(page: str, text: str) -> bool:
    """Whether the page's QR code is the QR code of ``text`` (at some error-correction level)."""
    import segno

    found = qr_modules(page)
    for level in "lmqh":
        matrix = segno.make(text, error=level, micro=False).matrix
        if found == {(c + 4, r + 4) for r, row in enumerate(matrix) for c, bit in enumerate(row) if bit}:
            return True
    return False


def test_an_admin_sets_a_password_enrols_a_second_factor_and_unlocks_a_login(office: Office) -> None:
    admin = office.admin
    status, _, page = get(admin, f"{office.url}/users")
    assert status == 200 and 'href="/users"' in page  # in the admin's menu
    rows = {m.group(1): m.group(0) for m in re.finditer(r'<tr id="person-([^"]+)">.*?</tr>', page, re.DOTALL)}
    assert set(rows) == set(PEOPLE)  # everyone in the on-call file, with how they log in
    assert "<td>not set</td>" in rows["chen.jie"] and "<td>set</td>" in rows["li.na"]
    assert "<td>Yes</td>" in rows["ad.min"] and "<td>No</td>" in rows["li.na"]

    # a password for chen.jie: the rules apply, two different entries change nothing
    form = csrf(get(admin, f"{office.url}/users/chen.jie")[2])
    status, url, _ = post(admin, f"{office.url}/users/chen.jie/password", {"csrf": form, "password": "short",
                                                                            "again": "short"})
    assert status == 200 and "too short" in flash(url) and "nothing changed" in flash(url)
    status, url, _ = post(admin, f"{office.url}/users/chen.jie/password", {"csrf": form, "password": PASSWORD,
                                                                            "again": PASSWORD + "!"})
    assert "differ" in flash(url)
    assert office.rows("SELECT count(*) FROM logins WHERE person = 'chen.jie'") == [(0,)]
    status, url, page = post(admin, f"{office.url}/users/chen.jie/password", {"csrf": form, "password": PASSWORD,
                                                                               "again": PASSWORD})
    assert status == 200 and url.startswith(f"{office.url}/users/chen.jie?ok=") and "Password set." in page
    assert ("ad.min", "person:chen.jie", '{"via": "web"}') in office.audit("user.passwd")
    office.log_in("chen.jie")

    # a second factor: the key once, as text, as its otpauth:// URI and as a QR code of that URI
    status, _, page = post(admin, f"{office.url}/users/chen.jie/totp", {"csrf": form})
    assert status == 200
    uri = html.unescape(re.search(r'<code id="totp-uri">([^<]+)</code>', page).group(1))  # type: ignore[union-attr]
    key = re.search(r'<code class="key" id="totp-key">([^<]+)</code>', page).group(1).replace(" ", "")  # type: ignore[union-attr]
    assert uri.startswith("otpauth://totp/") and f"secret={key}" in uri and "chen.jie" in uri
    assert "<script" not in page and encodes(page, uri)
    assert ("ad.min", "person:chen.jie", '{"via": "web"}') in office.audit("user.totp.enrol")
    assert key not in str(office.rows("SELECT detail FROM audit_log"))  # never in the log
    # from now on chen.jie logs in with a code from that key
    opener = http_session(office.collector)
    status, url, _ = post(opener, f"{office.url}/login", {"person": "chen.jie", "password": PASSWORD})
    assert url.startswith(f"{office.url}/login/second-factor")
    status, url, _ = post(opener, f"{office.url}/login/second-factor", {"code": pyotp.TOTP(key).now()})
    assert url == f"{office.url}/incidents"
    # the admin role needs its second factor: it can be replaced, not removed
    own = csrf(get(admin, f"{office.url}/users/ad.min")[2])
    status, url, _ = post(admin, f"{office.url}/users/ad.min/totp/remove", {"csrf": own})
    assert "needs a second factor" in flash(url)
    assert office.rows("SELECT totp_secret IS NOT NULL FROM logins WHERE person = 'ad.min'") == [(1,)]

    # five wrong passwords lock zhao.lock; the page shows it and the admin unlocks it
    stranger = http_session(office.collector)
    for _ in range(5):
        assert post(stranger, f"{office.url}/login", {"person": "zhao.lock", "password": "not the password"})[0] == 401
    assert post(stranger, f"{office.url}/login", {"person": "zhao.lock", "password": PASSWORD})[0] == 401
    page = get(admin, f"{office.url}/users/zhao.lock")[2]
    assert "locked until" in page and 'id="unlock"' in page
    status, url, page = post(admin, f"{office.url}/users/zhao.lock/unlock", {"csrf": csrf(page)})
    assert "Unlocked." in page and ("ad.min", "person:zhao.lock", '{"via": "web"}') in office.audit("user.unlock")
    office.log_in("zhao.lock")
    # the admin is still logged in after all of it
    assert get(admin, f"{office.url}/users")[0] == 200


def test_only_an_admin_manages_logins_and_a_forged_form_changes_nothing(office: Office) -> None:
    for person in ("view.er", "liu.director", "li.na"):
        opener = office.log_in(person)
        status, _, page = get(opener, f"{office.url}/users")
        assert status == 403 and "may not do this" in page, person
        assert 'href="/users"' not in get(opener, f"{office.url}/incidents")[2]
        if person == "liu.director":  # the new forms in the reader's language (zh-TW)
            assert "立即巡檢" in get(opener, f"{office.url}/patrol")[2]
            assert "執行處置流程" in get(opener, f"{office.url}/runbooks")[2]
    viewer = office.log_in("view.er")
    form = csrf(get(viewer, f"{office.url}/incidents")[2])
    before = office.rows("SELECT password_hash, failed, locked_until FROM logins WHERE person = 'li.na'")
    changes = office.rows("SELECT count(*) FROM audit_log WHERE action LIKE 'user.%' AND target = 'person:li.na'")
    status, _, _ = post(viewer, f"{office.url}/users/li.na/password", {"csrf": form, "password": "x" * 12 + "yz",
                                                                        "again": "x" * 12 + "yz"})
    assert status == 403
    # the admin's own session, but no CSRF token (a page elsewhere posting with the admin's cookie)
    status, _, page = post(office.admin, f"{office.url}/users/li.na/password",
                           {"password": "a new password 1", "again": "a new password 1"})
    assert status == 403 and "out of date" in page
    status, _, _ = post(office.admin, f"{office.url}/users/li.na/totp", {"csrf": "forged"})
    assert status == 403
    # and no session at all
    assert post(http_session(office.collector), f"{office.url}/users/li.na/unlock", {})[0] == 401
    assert office.rows("SELECT password_hash, failed, locked_until FROM logins WHERE person = 'li.na'") == before
    assert office.rows("SELECT totp_secret FROM logins WHERE person = 'li.na'") == [(None,)]
    assert office.rows("SELECT count(*) FROM audit_log WHERE action LIKE 'user.%' AND target = 'person:li.na'") == changes
    office.log_in("li.na")  # the old password still works


# --- patrol and runbook runs started on the pages --------------------------------------------------


def test_an_operator_starts_a_patrol_and_a_viewer_cannot(office: Office) -> None:
    viewer = office.log_in("view.er")
    page = get(viewer, f"{office.url}/patrol")[2]
    assert 'action="/patrol/run"' not in page
    runs = office.rows("SELECT count(*) FROM patrol_runs")
    assert post(viewer, f"{office.url}/patrol/run", {"csrf": csrf(page), "checklist": "daily"})[0] == 403
    assert office.rows("SELECT count(*) FROM patrol_runs") == runs

    operator = office.log_in("op.erator")
    page = get(operator, f"{office.url}/patrol")[2]
    assert 'action="/patrol/run"' in page and '<option value="daily">' in page
    form = csrf(page)
    assert post(operator, f"{office.url}/patrol/run", {"checklist": "daily"})[0] == 403  # no CSRF token
    assert office.rows("SELECT count(*) FROM patrol_runs") == runs
    status, url, _ = post(operator, f"{office.url}/patrol/run", {"csrf": form, "checklist": "nightly"})
    assert "no checklist named 'nightly'" in flash(url)
    status, url, page = post(operator, f"{office.url}/patrol/run", {"csrf": form, "checklist": "daily"})
    run_id = int(re.search(r"/patrol/(\d+)\?ok=", url).group(1))  # type: ignore[union-attr]
    assert status == 200 and f"#{run_id}" in page
    assert office.rows("SELECT checklist, started_by FROM patrol_runs WHERE id = ?", run_id) == [("daily", "op.erator")]
    assert (("op.erator", f"patrol:{run_id}", '{"checklist": "daily", "via": "web"}') in office.audit("patrol.run"))
    wait_until(lambda: office.rows("SELECT state FROM patrol_runs WHERE id = ?", run_id)[0][0] not in
               ("queued", "running"), timeout=30, what="the patrol run to finish")


def test_on_call_dry_runs_then_starts_a_runbook_which_waits_for_the_directors_approval(office: Office) -> None:
    for person in ("view.er", "op.erator"):  # runbooks are run by on-call and up
        opener = office.log_in(person)
        page = get(opener, f"{office.url}/runbooks")[2]
        assert 'action="/runbooks/run"' not in page, person
        fields = {"csrf": csrf(page), "runbook": "isolate-host", "asset": HOST, "mode": "run"}
        assert post(opener, f"{office.url}/runbooks/run", fields)[0] == 403, person
    assert office.rows("SELECT count(*) FROM runbook_runs") == [(0,)]

    on_call = office.log_in("li.na")
    page = get(on_call, f"{office.url}/runbooks?asset={HOST}")[2]
    assert 'action="/runbooks/run"' in page and f'value="{HOST}"' in page
    form = {"csrf": csrf(page), "runbook": "isolate-host", "asset": HOST, "incident": "", "variables": ""}
    # the dry run shows every step, the approval and the switch command, and queues nothing
    status, _, page = post(on_call, f"{office.url}/runbooks/run", {**form, "mode": "dry-run"})
    assert status == 200 and "Dry run: nothing was executed" in page
    assert "ask-director" in page and f"{SWITCH}" in page and PORT in page and "changes things" in page
    assert office.rows("SELECT count(*) FROM runbook_runs") == [(0,)]
    # what the API refuses, the page refuses, with the reason
    status, url, _ = post(on_call, f"{office.url}/runbooks/run", {**form, "asset": "no-such-pc", "mode": "run"})
    assert "no asset named 'no-such-pc'" in flash(url)
    status, url, _ = post(on_call, f"{office.url}/runbooks/run", {**form, "variables": "Bad Name=1", "mode": "run"})
    assert status == 200 and "variables" in flash(url)
    assert office.rows("SELECT count(*) FROM runbook_runs") == [(0,)]

    status, url, page = post(on_call, f"{office.url}/runbooks/run", {**form, "mode": "run"})
    assert status == 200 and url.startswith(f"{office.url}/runbooks?ok=")
    ((run_id, started_by, automatic),) = office.rows("SELECT id, started_by, automatic FROM runbook_runs")
    assert (started_by, automatic) == ("li.na", 0) and f"#{run_id} isolate-host" in flash(url)
    assert [row[:2] for row in office.audit("runbook.request")] == [("li.na", f"run:{run_id}")]
    # the runbook service takes it like any run: the approval step waits for the director
    wait_until(lambda: office.rows("SELECT state FROM runbook_runs WHERE id = ?", run_id)[0][0] == "waiting_approval",
               timeout=30, what="the run to wait for the approval")
    page = get(on_call, f"{office.url}/runbooks")[2]
    status, url, _ = post(on_call, f"{office.url}/runbooks/runs/{run_id}/decide", {"csrf": csrf(page),
                                                                                   "decision": "approve"})
    assert "li.na started this run and cannot approve their own request" in flash(url)
    assert office.rows("SELECT state FROM runbook_runs WHERE id = ?", run_id) == [("waiting_approval",)]


# --- on a phone ------------------------------------------------------------------------------------


def test_the_new_forms_fit_a_phone_and_the_qr_code_renders_under_the_pages_csp(office: Office, tmp_path: Path) -> None:
    """One browser (Debian's chromium) at a phone's width, logged in with the admin's session: no page
    scrolls sideways, and the enrolment's QR code is drawn (inline SVG passes the strict CSP)."""
    from selenium.webdriver.common.by import By

    from tests.browser import browser_session

    jar = next(h.cookiejar for h in office.admin.handlers if hasattr(h, "cookiejar"))
    session = next(c.value for c in jar if c.name == "schoolops_session")
    with browser_session() as browser:
        browser.set_window_size(390, 844)
        browser.get(f"{office.url}/login")
        browser.add_cookie({"name": "schoolops_session", "value": session, "path": "/"})
        for path in ("/users", "/users/zhao.lock", "/patrol", "/runbooks"):
            browser.get(f"{office.url}{path}")
            assert browser.find_element(By.TAG_NAME, "h1").is_displayed(), path
            wide, view = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
            assert wide <= view, (path, wide, view)
            shoot(browser, tmp_path, f"phone-{path.strip('/').replace('/', '-')}")
        browser.get(f"{office.url}/users/zhao.lock")
        browser.find_element(By.ID, "enrol-totp").click()
        qr = wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "#qr svg.qr path.qrline"), timeout=15,
                        what="the QR code")[0]
        size = qr.size
        assert size["width"] > 100 and size["height"] > 100, size  # drawn, not blocked
        assert browser.find_element(By.ID, "totp-uri").text.startswith("otpauth://totp/")
        shoot(browser, tmp_path, "phone-totp-enrolment")
