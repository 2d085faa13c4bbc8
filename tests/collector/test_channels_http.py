"""The HTTP notifiers against small real servers on 127.0.0.1 that stand in for WeCom, DingTalk, a webhook
gateway and an Alertmanager receiver: each checks what the real service checks (key, signature, clock)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
import pytest
from aiohttp import web

from collector import CollectorError
from collector.domain import Severity
from collector.notify.channels import REGISTRY, build_channel
from collector.notify.channels.alertmanager import AlertmanagerNotifier
from collector.notify.channels.config import (
    AlertmanagerChannel,
    ChannelConfig,
    DingtalkChannel,
    EmailChannel,
    WebhookChannel,
    WecomChannel,
)
from collector.notify.channels.dingtalk import DingtalkNotifier
from collector.notify.channels.webhook import WebhookNotifier
from collector.notify.channels.wecom import WecomNotifier
from collector.notify.model import (
    Language,
    Message,
    MessageKind,
    NotifyError,
    Recipient,
)
from schoolops.units import Seconds

WECOM_KEY = "693a91f6-7aaa-4bc4-97a0-0ec2sifa5aaa"
DING_TOKEN = "c4f1d7b2e9a84c0f9b1e2d3c4b5a6978"
DING_SECRET = "SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"
HOOK_SECRET = "whsec-school-gateway-2024"

PAGE = Message(
    kind=MessageKind.PAGE, language=Language.ZH_CN, subject="【P2 重大】web-01 磁盘将满",
    text="web-01 的 /var 已用 93%。\n请尽快清理日志。", severity=Severity.P2, incident_id=42,
    ack_url="https://ops.school.example/ack/42?sig=abc123",
)
ZHANG = Recipient(person="zhang", name="张老师", address="13800001111")
GROUP = Recipient(person="", name="值班群")

Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]
N = TypeVar("N")


@dataclass
class Peer:
    """A stand-in service: ``answer`` decides each reply; every request is kept for the test to inspect."""

    answer: Answer
    base: str = ""
    requests: list[tuple[web.Request, bytes]] = field(default_factory=list)
    clients: list[Any] = field(default_factory=list)  # notifiers aimed at this peer, closed at teardown

    def client(self, notifier: N) -> N:
        self.clients.append(notifier)
        return notifier

    def json(self, index: int = -1) -> Any:
        return msgspec.json.decode(self.requests[index][1])


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Answer], Awaitable[Peer]]]:
    runners: list[web.AppRunner] = []
    peers: list[Peer] = []

    async def start(answer: Answer) -> Peer:
        peer = Peer(answer)
        peers.append(peer)

        async def handle(request: web.Request) -> web.StreamResponse:
            peer.requests.append((request, await request.read()))
            return await peer.answer(request)

        app = web.Application()
        app.router.add_post("/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        peer.base = f"http://{host}:{port}"
        return peer

    yield start
    for notifier in (notifier for peer in peers for notifier in peer.clients):
        await notifier.close()
    for runner in runners:
        await runner.cleanup()


def status(code: int, headers: dict[str, str] | None = None) -> Answer:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(status=code, headers=headers, text="nope")
    return answer


def errcode(code: int, message: str = "") -> Answer:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.json_response({"errcode": code, "errmsg": message})
    return answer


def assert_no_secret(exc: BaseException, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in str(exc) and secret not in repr(exc)


# --- WeCom ------------------------------------------------------------------------------------------

async def wecom_robot(request: web.Request) -> web.StreamResponse:
    """What qyapi.weixin.qq.com checks: the key, then the message type and its content."""
    if request.query.get("key") != WECOM_KEY:
        return web.json_response({"errcode": 93000, "errmsg": "invalid webhook url, hint: [1700000000_1]"})
    body = await request.json()
    if body.get("msgtype") not in ("text", "markdown") or not body[body["msgtype"]].get("content"):
        return web.json_response({"errcode": 40008, "errmsg": "invalid message type"})
    return web.json_response({"errcode": 0, "errmsg": "ok"})


def wecom(peer: Peer, **overrides: Any) -> WecomNotifier:
    config = WecomChannel(id="wecom-ops", url_secret="wecom-key", timeout=overrides.pop("timeout", Seconds(5)))
    return peer.client(WecomNotifier(config, url=f"{peer.base}/cgi-bin/webhook/send?key={overrides.get('key', WECOM_KEY)}"))


async def test_wecom_markdown_with_a_userid_mention(serve: Any) -> None:
    peer = await serve(wecom_robot)
    await wecom(peer).send(PAGE, Recipient(person="li", name="李老师", address="LiSi"))

    assert peer.json() == {"msgtype": "markdown", "markdown": {"content": (
        "**【P2 重大】web-01 磁盘将满**\nweb-01 的 /var 已用 93%。\n请尽快清理日志。\n"
        "[点击确认](https://ops.school.example/ack/42?sig=abc123)\n<@LiSi>")}}
    assert peer.requests[0][0].headers["Content-Type"] == "application/json"


async def test_wecom_mentions_a_mobile_number_in_a_text_message(serve: Any) -> None:
    # WeCom's markdown cannot mention by mobile number; its text message can
    peer = await serve(wecom_robot)
    await wecom(peer).send(PAGE, ZHANG)
    body = peer.json()
    assert body["msgtype"] == "text"
    assert body["text"]["mentioned_mobile_list"] == ["13800001111"]
    assert body["text"]["content"].startswith("【P2 重大】web-01 磁盘将满\n")
    assert body["text"]["content"].endswith("点击确认: https://ops.school.example/ack/42?sig=abc123")


async def test_wecom_group_message_without_a_mention(serve: Any) -> None:
    peer = await serve(wecom_robot)
    await wecom(peer).send(PAGE, GROUP)
    assert "<@" not in peer.json()["markdown"]["content"]


async def test_wecom_a_long_message_is_cut_to_wecoms_limit(serve: Any) -> None:
    peer = await serve(wecom_robot)
    long = Message(kind=MessageKind.DIGEST, language=Language.ZH_CN, subject="摘要", text="磁盘将满。" * 1000)
    await wecom(peer).send(long, Recipient(person="li", name="李老师", address="LiSi"))
    content = peer.json()["markdown"]["content"]
    assert len(content.encode()) <= 4096 and content.endswith("<@LiSi>")


async def test_wecom_a_wrong_key_is_permanent_and_the_key_is_never_shown(serve: Any) -> None:
    peer = await serve(wecom_robot)
    with pytest.raises(NotifyError) as caught:
        await wecom(peer, key="not-the-key-0000").send(PAGE, GROUP)
    assert caught.value.permanent
    assert "93000" in str(caught.value) and "key=***" in str(caught.value)
    assert_no_secret(caught.value, "not-the-key-0000", WECOM_KEY)


async def test_wecom_rate_limit_is_transient_for_a_minute(serve: Any) -> None:
    peer = await serve(errcode(45009, "api freq out of limit"))
    with pytest.raises(NotifyError) as caught:
        await wecom(peer).send(PAGE, GROUP)
    assert not caught.value.permanent
    assert caught.value.retry_after == 60
    assert_no_secret(caught.value, WECOM_KEY)


async def test_wecom_an_errmsg_that_quotes_the_key_is_scrubbed(serve: Any) -> None:
    peer = await serve(errcode(40001, f"invalid credential, key {WECOM_KEY}"))
    with pytest.raises(NotifyError) as caught:
        await wecom(peer).send(PAGE, GROUP)
    assert caught.value.permanent
    assert_no_secret(caught.value, WECOM_KEY)


async def test_wecom_200_without_json_is_permanent(serve: Any) -> None:
    async def captive_portal(request: web.Request) -> web.StreamResponse:
        return web.Response(text="<html>please log in</html>", content_type="text/html")
    peer = await serve(captive_portal)
    with pytest.raises(NotifyError) as caught:
        await wecom(peer).send(PAGE, GROUP)
    assert caught.value.permanent
    assert_no_secret(caught.value, WECOM_KEY)


@pytest.mark.parametrize(("code", "permanent", "retry_after"),
                         [(429, False, 30.0), (503, False, 30.0), (500, False, 30.0), (400, True, None), (403, True, None)])
async def test_wecom_http_statuses(serve: Any, code: int, permanent: bool, retry_after: float | None) -> None:
    peer = await serve(status(code, {"Retry-After": "30"}))
    with pytest.raises(NotifyError) as caught:
        await wecom(peer).send(PAGE, GROUP)
    assert caught.value.permanent is permanent
    assert caught.value.retry_after == retry_after
    assert str(code) in str(caught.value)
    assert_no_secret(caught.value, WECOM_KEY)


# --- DingTalk ---------------------------------------------------------------------------------------

async def dingtalk_robot(request: web.Request) -> web.StreamResponse:
    """What oapi.dingtalk.com checks for a robot with signing: token, timestamp within an hour, signature."""
    query = request.query
    if query.get("access_token") != DING_TOKEN:
        return web.json_response({"errcode": 300001, "errmsg": "token is not exist"})
    try:
        timestamp = int(query["timestamp"])
    except (KeyError, ValueError):
        return web.json_response({"errcode": 310000, "errmsg": "missing timestamp"})
    if abs(time.time() * 1000 - timestamp) > 3600 * 1000:
        return web.json_response({"errcode": 310000, "errmsg": "invalid timestamp"})
    expected = base64.b64encode(
        hmac.new(DING_SECRET.encode(), f"{timestamp}\n{DING_SECRET}".encode(), hashlib.sha256).digest()).decode()
    if not hmac.compare_digest(query.get("sign", ""), expected):
        return web.json_response({"errcode": 310000, "errmsg": "sign not match"})
    body = await request.json()
    if body.get("msgtype") != "markdown" or not body["markdown"].get("title") or not body["markdown"].get("text"):
        return web.json_response({"errcode": 40035, "errmsg": "缺少参数 markdown"})
    return web.json_response({"errcode": 0, "errmsg": "ok"})


def dingtalk(peer: Peer, *, secret: str = DING_SECRET, clock: Callable[[], float] = time.time) -> DingtalkNotifier:
    config = DingtalkChannel(id="ding-ops", url_secret="ding-url", signing_secret="ding-sign", timeout=Seconds(5))
    return peer.client(DingtalkNotifier(config, url=f"{peer.base}/robot/send?access_token={DING_TOKEN}",
                                        signing_secret=secret, clock=clock))


async def test_dingtalk_signed_markdown_with_a_mobile_mention(serve: Any) -> None:
    peer = await serve(dingtalk_robot)
    await dingtalk(peer).send(PAGE, ZHANG)

    request, _ = peer.requests[0]
    assert set(request.query) == {"access_token", "timestamp", "sign"}
    body = peer.json()
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"] == PAGE.subject
    text = body["markdown"]["text"]
    assert text.startswith("#### 【P2 重大】web-01 磁盘将满\n\nweb-01 的 /var 已用 93%。\n\n请尽快清理日志。")
    assert "[点击确认](https://ops.school.example/ack/42?sig=abc123)" in text
    assert text.endswith("@13800001111")  # DingTalk shows the mention only when the text has it too
    assert body["at"] == {"atMobiles": ["13800001111"], "atUserIds": [], "isAtAll": False}


async def test_dingtalk_signature_survives_characters_that_need_escaping(serve: Any) -> None:
    # over many timestamps some signatures contain + / and =, which must be percent-encoded exactly once
    peer = await serve(dingtalk_robot)
    start = time.time()
    for step in range(40):
        await dingtalk(peer, clock=lambda step=step: start + step * 0.001).send(PAGE, GROUP)  # type: ignore[misc]
    signs = [request.query["sign"] for request, _ in peer.requests]
    assert any("+" in sign or "/" in sign for sign in signs)


async def test_dingtalk_a_wrong_signing_secret_is_permanent_and_never_shown(serve: Any) -> None:
    peer = await serve(dingtalk_robot)
    with pytest.raises(NotifyError) as caught:
        await dingtalk(peer, secret="SECwrongwrongwrongwrong").send(PAGE, GROUP)
    assert caught.value.permanent
    assert "310000" in str(caught.value)
    assert_no_secret(caught.value, DING_TOKEN, DING_SECRET, "SECwrongwrongwrongwrong")


async def test_dingtalk_a_clock_off_by_two_hours_is_refused(serve: Any) -> None:
    peer = await serve(dingtalk_robot)
    with pytest.raises(NotifyError) as caught:
        await dingtalk(peer, clock=lambda: time.time() - 7200).send(PAGE, GROUP)
    assert caught.value.permanent
    assert "invalid timestamp" in str(caught.value)


async def test_dingtalk_rate_limit_is_transient(serve: Any) -> None:
    peer = await serve(errcode(130101, "send too fast, exceed 20 times per minute"))
    with pytest.raises(NotifyError) as caught:
        await dingtalk(peer).send(PAGE, GROUP)
    assert not caught.value.permanent and caught.value.retry_after == 60
    assert_no_secret(caught.value, DING_TOKEN, DING_SECRET)


@pytest.mark.parametrize(("code", "permanent"), [(429, False), (503, False), (400, True), (403, True)])
async def test_dingtalk_http_statuses(serve: Any, code: int, permanent: bool) -> None:
    peer = await serve(status(code))
    with pytest.raises(NotifyError) as caught:
        await dingtalk(peer).send(PAGE, GROUP)
    assert caught.value.permanent is permanent
    assert_no_secret(caught.value, DING_TOKEN, DING_SECRET)


# --- generic webhook --------------------------------------------------------------------------------

def sms_gateway(secret: str) -> Answer:
    """A gateway that verifies the signature over the raw body, as its documentation would tell it to."""
    async def answer(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        expected = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("X-Schoolops-Signature", ""), expected):
            return web.Response(status=401, text="bad signature")
        if abs(time.time() - int(request.headers["X-Schoolops-Timestamp"])) > 300:
            return web.Response(status=401, text="stale")
        return web.json_response({"queued": True}, status=202)
    return answer


def webhook(peer: Peer, secret: str | None = HOOK_SECRET) -> WebhookNotifier:
    config = WebhookChannel(id="sms", url=f"{peer.base}/sms/send", signing_secret="sms-hmac" if secret else None,
                            timeout=Seconds(5))
    return peer.client(WebhookNotifier(config, signing_secret=secret))


async def test_webhook_body_and_a_signature_the_gateway_verifies(serve: Any) -> None:
    peer = await serve(sms_gateway(HOOK_SECRET))
    await webhook(peer).send(PAGE, ZHANG)

    body = peer.json()
    sent_at = body.pop("sent_at")
    assert body == {
        "kind": "page", "severity": "P2", "incident": 42, "subject": PAGE.subject, "text": PAGE.text,
        "language": "zh-CN", "ack_url": PAGE.ack_url,
        "recipient": {"person": "zhang", "name": "张老师", "address": "13800001111"},
    }
    assert sent_at.endswith("Z") and sent_at.startswith(time.strftime("%Y-", time.gmtime()))


async def test_webhook_a_wrong_secret_is_refused_permanently_and_never_shown(serve: Any) -> None:
    peer = await serve(sms_gateway(HOOK_SECRET))
    with pytest.raises(NotifyError) as caught:
        await webhook(peer, secret="the-wrong-secret").send(PAGE, ZHANG)
    assert caught.value.permanent  # 401
    assert_no_secret(caught.value, "the-wrong-secret", HOOK_SECRET)


async def test_webhook_without_a_secret_sends_no_signature(serve: Any) -> None:
    async def accept(request: web.Request) -> web.StreamResponse:
        return web.Response(status=204)
    peer = await serve(accept)
    await webhook(peer, secret=None).send(PAGE, GROUP)
    request, _ = peer.requests[0]
    assert "X-Schoolops-Signature" not in request.headers
    assert request.headers["X-Schoolops-Timestamp"].isdigit()
    assert peer.json()["recipient"] == {"person": "", "name": "值班群", "address": None}


@pytest.mark.parametrize(("code", "headers", "permanent", "retry_after"), [
    (429, {"Retry-After": "120"}, False, 120.0),
    (503, {"Retry-After": "7"}, False, 7.0),
    (408, {}, False, None),
    (502, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, False, None),  # the date form: left to backoff
    (400, {"Retry-After": "5"}, True, None),
    (403, {}, True, None),
    (404, {}, True, None),
])
async def test_webhook_http_statuses(serve: Any, code: int, headers: dict[str, str], permanent: bool,
                                     retry_after: float | None) -> None:
    peer = await serve(status(code, headers))
    with pytest.raises(NotifyError) as caught:
        await webhook(peer).send(PAGE, ZHANG)
    assert caught.value.permanent is permanent
    assert caught.value.retry_after == retry_after
    assert_no_secret(caught.value, HOOK_SECRET)


async def test_a_redirect_is_not_followed_and_is_permanent(serve: Any) -> None:
    async def moved(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("http://127.0.0.1:1/elsewhere")
    peer = await serve(moved)
    with pytest.raises(NotifyError) as caught:
        await webhook(peer).send(PAGE, ZHANG)
    assert caught.value.permanent and len(peer.requests) == 1


async def test_nothing_listening_is_transient() -> None:
    with socket.socket() as bound:  # bound and not listening: connecting is refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        config = WebhookChannel(id="sms", url=f"http://127.0.0.1:{port}/send", timeout=Seconds(5))
        with pytest.raises(NotifyError) as caught:
            notifier = WebhookNotifier(config)
            try:
                await notifier.send(PAGE, ZHANG)
            finally:
                await notifier.close()
    assert not caught.value.permanent


async def test_a_slow_answer_is_a_transient_timeout(serve: Any) -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(1)
        return web.Response()
    peer = await serve(slow)
    notifier = peer.client(WecomNotifier(WecomChannel(id="wecom-ops", url_secret="k", timeout=Seconds(0.3)),
                                         url=f"{peer.base}/cgi-bin/webhook/send?key={WECOM_KEY}"))
    with pytest.raises(NotifyError) as caught:
        await notifier.send(PAGE, GROUP)
    assert not caught.value.permanent and "0.3s" in str(caught.value)
    assert_no_secret(caught.value, WECOM_KEY)


# --- Alertmanager webhook ---------------------------------------------------------------------------

async def test_alertmanager_payload_firing_then_resolved(serve: Any) -> None:
    async def receiver(request: web.Request) -> web.StreamResponse:
        return web.Response(status=200)
    peer = await serve(receiver)
    notifier = peer.client(AlertmanagerNotifier(AlertmanagerChannel(id="am", url=f"{peer.base}/alerts")))
    await notifier.send(PAGE, ZHANG)
    summary = Message(kind=MessageKind.SUMMARY, language=Language.ZH_CN, subject="【已恢复】web-01 磁盘",
                      text="已清理日志，/var 现为 61%。", severity=Severity.P2, incident_id=42)
    await notifier.send(summary, ZHANG)

    firing, resolved = peer.json(0), peer.json(1)
    assert set(firing) == {"version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
                           "commonLabels", "commonAnnotations", "externalURL", "alerts"}
    assert firing["version"] == "4" and firing["status"] == "firing" and firing["receiver"] == "am"
    assert firing["truncatedAlerts"] == 0
    assert firing["externalURL"] == "https://ops.school.example"
    [alert] = firing["alerts"]
    assert set(alert) == {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
    assert alert["status"] == "firing"
    assert alert["labels"] == {"alertname": "SchoolopsIncident", "incident": "42", "severity": "P2"}
    assert alert["annotations"]["summary"] == PAGE.subject
    assert alert["annotations"]["description"] == PAGE.text
    assert alert["annotations"]["ack_url"] == PAGE.ack_url
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["startsAt"].endswith("Z")
    assert firing["groupLabels"] == {"alertname": "SchoolopsIncident", "incident": "42"}
    assert firing["groupKey"] == '{}:{alertname="SchoolopsIncident", incident="42"}'
    assert firing["commonLabels"] == alert["labels"]

    assert resolved["status"] == "resolved"
    [done] = resolved["alerts"]
    assert done["status"] == "resolved" and done["endsAt"] != "0001-01-01T00:00:00Z"
    assert done["fingerprint"] == alert["fingerprint"]  # the same alert, now resolved
    assert resolved["groupKey"] == firing["groupKey"]


async def test_alertmanager_a_message_without_an_incident(serve: Any) -> None:
    async def receiver(request: web.Request) -> web.StreamResponse:
        return web.Response(status=200)
    peer = await serve(receiver)
    broken = Message(kind=MessageKind.CHANNEL_BROKEN, language=Language.EN, subject="Channel wecom-ops is broken",
                     text="WeCom answered errcode 93000.")
    await peer.client(AlertmanagerNotifier(AlertmanagerChannel(id="am", url=f"{peer.base}/alerts"))).send(broken, GROUP)
    [alert] = peer.json()["alerts"]
    assert alert["labels"] == {"alertname": "SchoolopsChannelBroken"}
    assert peer.json()["externalURL"] == ""


# --- the registry -----------------------------------------------------------------------------------

SECRETS = {"smtp": "pw", "wecom-key": f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={WECOM_KEY}",
           "ding-url": f"https://oapi.dingtalk.com/robot/send?access_token={DING_TOKEN}", "ding-sign": DING_SECRET,
           "sms-hmac": HOOK_SECRET}
CONFIGS: list[ChannelConfig] = [
    EmailChannel(id="mail", host="smtp.school.example", sender="alerts@school.example", username="alerts",
                 password_secret="smtp"),
    WecomChannel(id="wecom-ops", url_secret="wecom-key"),
    DingtalkChannel(id="ding-ops", url_secret="ding-url", signing_secret="ding-sign"),
    WebhookChannel(id="sms", url="https://sms.example/send", signing_secret="sms-hmac"),
    AlertmanagerChannel(id="am", url="https://am.example/hook"),
]


def test_the_registry_covers_every_configured_kind() -> None:
    kinds = {type(config).__struct_config__.tag for config in CONFIGS}
    assert set(REGISTRY) == kinds
    assert all(cls.kind == kind for kind, cls in REGISTRY.items())  # type: ignore[attr-defined]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda config: config.id)
async def test_build_channel_for_each_kind(config: ChannelConfig) -> None:
    channel = build_channel(config, SECRETS.__getitem__)
    assert type(channel) is REGISTRY[str(type(config).__struct_config__.tag)]
    assert channel.id == config.id and channel.max_per_minute == config.max_per_minute
    for secret in SECRETS.values():
        assert secret not in repr(channel)
    await channel.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("config", [c for c in CONFIGS if c.id != "am"], ids=lambda config: config.id)
def test_build_channel_names_the_channel_and_the_missing_secret(config: ChannelConfig) -> None:
    with pytest.raises(CollectorError) as caught:
        build_channel(config, dict[str, str]().__getitem__)
    assert not isinstance(caught.value, NotifyError)
    assert repr(config.id) in str(caught.value)
    assert any(repr(name) in str(caught.value) for name in SECRETS)
