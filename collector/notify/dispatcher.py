"""Delivering the outbox: rate limits, digests, retries, fallback, and never a silent failure.

Each pending row is sent on its channel. Past a channel's rate (robots: 20 a minute) the pending
messages of one recipient are merged into one digest, and what still does not fit waits for the
next minute — nothing is dropped. A transient failure is retried with exponential backoff; a
permanent one marks the channel broken, moves the message to the person's next contact, and opens
a fault about the broken channel (which reaches on-call through a channel that works).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from itertools import groupby

import structlog
from sqlalchemy.engine import Connection

from collector.domain import FaultType, Severity
from collector.notify import messages
from collector.notify.model import Channel, Language, Message, MessageKind, NotifyError, Recipient
from collector.notify.oncall import OnCallConfig, Person
from collector.store import incidents as q
from collector.store import outbox
from collector.supervise import every

logger = structlog.get_logger("schoolops.notify")
SYSTEM = "schoolops"
MAX_ATTEMPTS = 8  # ~10 minutes of retries before falling back to the next contact
DIGEST_MAX = 12  # messages in one digest: keeps it inside chat robots' size limits (WeCom: 4096 bytes)
BROKEN_RETRY = 3600.0  # a broken channel is tried again after this long


class Dispatcher:
    def __init__(self, store: object, channels: Mapping[str, Channel], oncall: OnCallConfig, *,
                 clock: Callable[[], float] = time.time, tick_interval: float = 1.0) -> None:
        self.store = store
        self.channels = channels
        self.oncall = oncall
        self.clock = clock
        self.tick_interval = tick_interval
        self._sent: dict[str, deque[float]] = defaultdict(deque)
        self._wake = asyncio.Event()
        self._registered = False

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        await every(self.tick_interval, self.tick, name="dispatcher", wake=self._wake)

    def _room(self, channel: Channel, now: float) -> int:
        window = self._sent[channel.id]
        while window and window[0] <= now - 60:
            window.popleft()
        return channel.max_per_minute - len(window)

    async def tick(self) -> None:
        if not self._registered:  # every channel's series exist from the start, not from its first message
            await self.store.run(lambda c: outbox.register_channels(c, self.channels))  # type: ignore[attr-defined]
            self._registered = True
        now = self.clock()
        items = await self.store.run(lambda c: outbox.pending(c, now))  # type: ignore[attr-defined]
        broken = await self.store.run(outbox.broken_channels)  # type: ignore[attr-defined]
        for channel_id, batch in groupby(sorted(items, key=lambda i: (i.channel, i.id)), key=lambda i: i.channel):
            batch = list(batch)
            channel = self.channels.get(channel_id)
            if channel is None or (channel_id in broken and now - broken[channel_id][0] < BROKEN_RETRY):
                reason = f"channel {channel_id} is not configured" if channel is None else f"channel {channel_id} is broken"
                for item in batch:
                    await self.store.run(lambda c, i=item, r=reason: self._fall_back(c, i, r, now))  # type: ignore[attr-defined]
                continue
            await self._send_batch(channel, batch, now)

    async def _send_batch(self, channel: Channel, batch: list[outbox.Outgoing], now: float) -> None:
        room = self._room(channel, now)
        if room <= 0:
            resume = self._sent[channel.id][0] + 60
            for item in batch:
                await self.store.run(lambda c, i=item: outbox.update(c, i.id, due_at=resume))  # type: ignore[attr-defined]
            return
        if len(batch) > room or len({(i.person, i.address) for i in batch}) < len(batch):
            # near the limit, or several for one reader: merge per reader rather than flood the chat
            batch = await self.store.run(lambda c: self._merge(c, batch, now))  # type: ignore[attr-defined]
        for item in batch[:room]:
            await self._send_one(channel, item, now)
        if len(batch) > room:  # more recipients than the channel takes this minute: the rest wait
            resume = now + 60
            for item in batch[room:]:
                await self.store.run(lambda c, i=item: outbox.update(c, i.id, due_at=resume))  # type: ignore[attr-defined]

    def _merge(self, conn: Connection, batch: list[outbox.Outgoing], now: float) -> list[outbox.Outgoing]:
        """Digests of at most DIGEST_MAX messages per recipient (and language); single ones stay as they are."""
        merged: list[outbox.Outgoing] = []
        key = lambda i: (i.person, i.address or "", i.language)  # noqa: E731
        chunks = []
        for (person, address, language), group in groupby(sorted(batch, key=key), key=key):
            items = list(group)
            chunks += [((person, address, language), items[n:n + DIGEST_MAX]) for n in range(0, len(items), DIGEST_MAX)]
        for (person, address, language), items in chunks:
            if len(items) == 1:
                merged.append(items[0])
                continue
            digest = messages.digest([_message(i) for i in items], language=Language(language))
            digest_id = outbox.enqueue(conn, incident_id=None, step_key=None, person=person, channel=items[0].channel,
                                       address=address or None, kind=MessageKind.DIGEST.value, severity=min(
                                           (i.severity for i in items if i.severity is not None), default=None),
                                       language=language, subject=digest.subject, text=digest.text, ack_url=None,
                                       created_at=now, contact_index=items[0].contact_index)
            for item in items:
                outbox.update(conn, item.id, state="merged", merged_into=digest_id)
                if item.incident_id is not None:
                    q.add_event(conn, item.incident_id, now, "notification_merged", SYSTEM,
                                f"merged into digest {digest_id} on {item.channel} (rate limit)", {"notification": item.id})
            merged.append(outbox.get(conn, digest_id))
        return merged

    async def _send_one(self, channel: Channel, item: outbox.Outgoing, now: float) -> None:
        person = find_person(self.oncall, item.person)
        recipient = Recipient(person=item.person, name=person.name if person else channel.id, address=item.address)
        try:
            await channel.send(_message(item), recipient)
        except NotifyError as exc:
            error = exc
            await self.store.run(lambda c: self._failed(c, channel, item, error, now))  # type: ignore[attr-defined]
            return
        self._sent[channel.id].append(now)
        await self.store.run(lambda c: self._delivered(c, channel, item, recipient, now))  # type: ignore[attr-defined]

    def _delivered(self, conn: Connection, channel: Channel, item: outbox.Outgoing, recipient: Recipient, now: float) -> None:
        outbox.update(conn, item.id, state="sent", sent_at=now, attempts=item.attempts + 1)
        outbox.set_channel_broken(conn, channel.id, None, None)
        if item.incident_id is not None:
            q.add_event(conn, item.incident_id, now, "delivered", SYSTEM,
                        f"{item.kind} sent to {recipient.name} by {channel.id}", {"notification": item.id, "step": item.step_key})
        logger.info("notification_sent", id=item.id, channel=channel.id, kind=item.kind, incident=item.incident_id)

    def _failed(self, conn: Connection, channel: Channel, item: outbox.Outgoing, exc: NotifyError, now: float) -> None:
        attempts = item.attempts + 1
        logger.warning("notify_failed", id=item.id, channel=channel.id, permanent=exc.permanent, error=str(exc),
                       attempts=attempts)
        if exc.permanent:
            outbox.update(conn, item.id, attempts=attempts)  # a failed attempt, counted like the retried ones
            if outbox.set_channel_broken(conn, channel.id, now, str(exc)):
                self._raise_broken_channel_fault(conn, channel.id, str(exc), now)
            self._fall_back(conn, item, f"{channel.id} failed permanently: {exc}", now)
            return
        if attempts >= MAX_ATTEMPTS:
            self._fall_back(conn, item, f"{channel.id} kept failing ({attempts} attempts): {exc}", now)
            return
        delay = exc.retry_after if exc.retry_after is not None else min(300.0, 2.0 * 2 ** attempts)
        outbox.update(conn, item.id, attempts=attempts, due_at=now + delay, last_error=str(exc))
        if item.incident_id is not None:
            q.add_event(conn, item.incident_id, now, "delivery_retry", SYSTEM,
                        f"{item.kind} on {channel.id} failed ({exc}); retrying in {delay:.0f} s", {"notification": item.id})

    def _fall_back(self, conn: Connection, item: outbox.Outgoing, reason: str, now: float) -> None:
        outbox.update(conn, item.id, state="given_up", last_error=reason)
        broken = outbox.broken_channels(conn)
        person = find_person(self.oncall, item.person)
        contacts = list(person.contacts) if person else []
        for index in range(item.contact_index + 1, len(contacts)):
            contact = contacts[index]
            if contact.channel in broken or contact.channel not in self.channels:
                continue
            new_id = outbox.enqueue(conn, incident_id=item.incident_id, step_key=item.step_key, person=item.person,
                                    channel=contact.channel, address=contact.address, kind=item.kind, severity=item.severity,
                                    language=item.language, subject=item.subject, text=item.text, ack_url=item.ack_url,
                                    created_at=now, contact_index=index)
            if item.incident_id is not None:
                q.add_event(conn, item.incident_id, now, "delivery_fallback", SYSTEM,
                            f"{reason}; sending to {person.name if person else item.person} by {contact.channel} instead",
                            {"notification": new_id})
            return
        who = person.name if person else item.channel
        if item.incident_id is not None:
            q.add_event(conn, item.incident_id, now, "delivery_given_up", SYSTEM,
                        f"{item.kind} for {who} could not be delivered on any channel: {reason}", {"notification": item.id})
        logger.error("notification_undeliverable", id=item.id, person=item.person, reason=reason)
        q.add_fault_report(conn, asset=None, site="schoolops", type=FaultType.APPLICATION, severity=Severity.P2,
                           description=f"a {item.kind} for {who} could not be delivered on any channel: {reason}",
                           reporter=SYSTEM, at=now)

    def _raise_broken_channel_fault(self, conn: Connection, channel_id: str, error: str, now: float) -> None:
        logger.error("channel_broken", channel=channel_id, error=error)
        q.add_fault_report(conn, asset=None, site="schoolops", type=FaultType.APPLICATION, severity=Severity.P3,
                           description=f"notification channel {channel_id} is broken: {error}", reporter=SYSTEM, at=now)


def _message(item: outbox.Outgoing) -> Message:
    return Message(kind=MessageKind(item.kind), language=Language(item.language), subject=item.subject, text=item.text,
                   severity=Severity(item.severity) if item.severity is not None else None,
                   incident_id=item.incident_id, ack_url=item.ack_url)



def find_person(config: OnCallConfig, person_id: str) -> Person | None:
    return next((p for p in config.people if p.id == person_id), None) if person_id else None
