"""SNMPv2c on the wire: GET and GETBULK requests encoded, their responses decoded and checked, and
one device's UDP conversation (request ids, timeouts, retries) on asyncio.

pysnmp decodes every message it receives into pyasn1 objects, in Python, with a generic BER codec:
measured, that was 84 of the poller's 107 µs per varbind (docs/benchmarks.md, figure 3), and no
maintained library decodes SNMP faster without a C toolchain at install time. The v2c messages a
poller exchanges have one small fixed shape (RFC 1901 message, RFC 3416 PDU), so this module
reads them directly from the bytes, checking every tag and length against the datagram: a reply
that does not parse is a :class:`MalformedReply` naming what is wrong, never a partial answer.
SNMPv3 (USM users, keys, privacy) and traps stay with pysnmp.
"""

from __future__ import annotations

import asyncio
import enum
import random
from collections.abc import Sequence
from dataclasses import dataclass

GET, GETBULK, RESPONSE = 0xA0, 0xA5, 0xA2
VERSION_2C = 1  # the message's version field for SNMPv2c (RFC 1901)

ERROR_NAMES = ("noError", "tooBig", "noSuchName", "badValue", "readOnly", "genErr", "noAccess", "wrongType",
               "wrongLength", "wrongEncoding", "wrongValue", "noCreation", "inconsistentValue",
               "resourceUnavailable", "commitFailed", "undoFailed", "authorizationError", "notWritable",
               "inconsistentName")  # error-status values, RFC 3416 section 3


class Absent(enum.Enum):
    """A varbind that carries no value: NULL, or one of the v2c exceptions (RFC 3416)."""

    NULL = 0x05
    NO_SUCH_OBJECT = 0x80
    NO_SUCH_INSTANCE = 0x81
    END_OF_MIB_VIEW = 0x82


Oid = tuple[int, ...]
Value = int | str | Absent
VarBind = tuple[Oid, Value]


class MalformedReply(ValueError):
    """A datagram that is not a well-formed SNMPv2c Response; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Response:
    request_id: int
    error_status: int
    error_index: int
    varbinds: list[VarBind]


def error_name(status: int) -> str:
    return ERROR_NAMES[status] if 0 <= status < len(ERROR_NAMES) else f"error-status {status}"


# --- encoding -------------------------------------------------------------------------------------

def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes((tag,)) + _length(len(body)) + body


def _integer(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def _arc(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def encode_oid(oid: Sequence[int]) -> bytes:
    """The BER body of an OBJECT IDENTIFIER; ValueError for one SNMP cannot carry."""
    if len(oid) < 2 or len(oid) > 128:
        raise ValueError(f"OID {'.'.join(map(str, oid))!r}: SNMP OIDs have 2 to 128 sub-identifiers")
    first, second = oid[0], oid[1]
    if first not in (0, 1, 2) or (first < 2 and not 0 <= second < 40) or second < 0:
        raise ValueError(f"OID {'.'.join(map(str, oid))!r}: starts with an arc no OID can have")
    if any(not 0 <= arc < 2**32 for arc in oid[2:]):
        raise ValueError(f"OID {'.'.join(map(str, oid))!r}: a sub-identifier is outside 0..4294967295")
    return _arc(40 * first + second) + b"".join(_arc(arc) for arc in oid[2:])


def encode_request(kind: int, request_id: int, community: bytes, oids: Sequence[Oid],
                   non_repeaters: int = 0, max_repetitions: int = 0) -> bytes:
    """A GET (``kind`` GET) or GETBULK message asking for ``oids`` (each with a NULL value)."""
    binds = b"".join(_tlv(0x30, _tlv(0x06, encode_oid(oid)) + b"\x05\x00") for oid in oids)
    second, third = (non_repeaters, max_repetitions) if kind == GETBULK else (0, 0)
    pdu = _tlv(kind, _integer(request_id) + _integer(second) + _integer(third) + _tlv(0x30, binds))
    return _tlv(0x30, _integer(VERSION_2C) + _tlv(0x04, community) + pdu)


# --- decoding -------------------------------------------------------------------------------------

def _header(data: bytes, at: int, end: int, what: str) -> tuple[int, int, int]:
    """(tag, start of the contents, end of the contents) of the TLV at ``at``, within ``end``."""
    if at + 2 > end:
        raise MalformedReply(f"{what}: the message ends at byte {end} where a value should start")
    tag, n = data[at], data[at + 1]
    at += 2
    if n & 0x80:
        size = n & 0x7F
        if size == 0 or size > 4:
            raise MalformedReply(f"{what}: unsupported length form 0x{n:02x} at byte {at - 1}")
        if at + size > end:
            raise MalformedReply(f"{what}: the length at byte {at - 1} is cut off")
        n = int.from_bytes(data[at:at + size], "big")
        at += size
    if at + n > end:
        raise MalformedReply(f"{what}: a length of {n} at byte {at} runs past the end ({end})")
    return tag, at, at + n


def _expect(data: bytes, at: int, end: int, tag: int, what: str) -> tuple[int, int]:
    got, start, stop = _header(data, at, end, what)
    if got != tag:
        raise MalformedReply(f"{what}: expected tag 0x{tag:02x} at byte {at}, got 0x{got:02x}")
    return start, stop


def _int(data: bytes, at: int, end: int, what: str) -> tuple[int, int]:
    start, stop = _expect(data, at, end, 0x02, what)
    if start == stop or stop - start > 8:
        raise MalformedReply(f"{what}: an INTEGER of {stop - start} bytes")
    return int.from_bytes(data[start:stop], "big", signed=True), stop


def decode_oid(raw: bytes) -> Oid:
    if not raw:
        raise MalformedReply("an OBJECT IDENTIFIER with no contents")
    if raw.isascii() and raw[0] < 80:  # every sub-identifier one byte: most of what a poll reads
        return (raw[0] // 40, raw[0] % 40, *raw[1:])
    if raw[-1] & 0x80:
        raise MalformedReply("an OBJECT IDENTIFIER whose last sub-identifier is cut off")
    arcs, value = [], 0
    for byte in raw:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = arcs[0]
    top = 0 if first < 40 else 1 if first < 80 else 2
    return (top, first - 40 * top, *arcs[1:])


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").rstrip("\x00")


_UNSIGNED = {0x41: 5, 0x42: 5, 0x43: 5, 0x46: 9}  # Counter32, Gauge32, TimeTicks, Counter64: most bytes
_ABSENT = {member.value: member for member in Absent}


def _value(tag: int, raw: bytes) -> Value:
    if tag == 0x02:
        if not raw or len(raw) > 8:
            raise MalformedReply(f"an INTEGER value of {len(raw)} bytes")
        return int.from_bytes(raw, "big", signed=True)
    if tag == 0x04 or tag == 0x44:  # OCTET STRING, Opaque
        return _text(raw)
    if tag in _UNSIGNED:
        if not raw or len(raw) > _UNSIGNED[tag]:
            raise MalformedReply(f"a counter (type 0x{tag:02x}) of {len(raw)} bytes")
        return int.from_bytes(raw, "big")
    if tag == 0x06:
        return ".".join(map(str, decode_oid(raw)))
    if tag == 0x40:  # IpAddress
        if len(raw) != 4:
            raise MalformedReply(f"an IpAddress of {len(raw)} bytes")
        return ".".join(map(str, raw))
    absent = _ABSENT.get(tag)
    if absent is None:
        raise MalformedReply(f"a value of unknown type 0x{tag:02x}")
    if raw:
        raise MalformedReply(f"{absent.name} with contents")
    return absent


def decode_response(data: bytes, community: bytes) -> Response:
    """The Response PDU in ``data``, checked: SNMPv2c, ``community``, every length inside the datagram."""
    end = len(data)
    start, stop = _expect(data, 0, end, 0x30, "message")
    if stop != end:
        raise MalformedReply(f"message: {end - stop} bytes after its end")
    version, at = _int(data, start, stop, "version")
    if version != VERSION_2C:
        raise MalformedReply(f"version: {version}, not SNMPv2c (1)")
    c_start, at = _expect(data, at, stop, 0x04, "community")
    if data[c_start:at] != community:
        raise MalformedReply("community: the reply carries another community than the request")
    tag, at, pdu_end = _header(data, at, stop, "PDU")
    if tag != RESPONSE:
        raise MalformedReply(f"PDU: type 0x{tag:02x}, not a Response (0xa2)")
    request_id, at = _int(data, at, pdu_end, "request-id")
    status, at = _int(data, at, pdu_end, "error-status")
    index, at = _int(data, at, pdu_end, "error-index")
    at, binds_end = _expect(data, at, pdu_end, 0x30, "variable-bindings")
    varbinds: list[VarBind] = []
    append = varbinds.append
    while at < binds_end:
        at, bind_end = _expect(data, at, binds_end, 0x30, "varbind")
        o_start, o_stop = _expect(data, at, bind_end, 0x06, "varbind name")
        tag, v_start, at = _header(data, o_stop, bind_end, "varbind value")
        if at != bind_end:
            raise MalformedReply(f"varbind {len(varbinds) + 1}: {bind_end - at} bytes after its value")
        append((decode_oid(data[o_start:o_stop]), _value(tag, data[v_start:at])))
    return Response(request_id, status, index, varbinds)


# --- the conversation -----------------------------------------------------------------------------

class NoAnswer(Exception):
    """No valid Response arrived within every try; ``problem``: what did arrive, if anything."""

    def __init__(self, problem: str | None) -> None:
        super().__init__(problem or "no answer")
        self.problem = problem


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, community: bytes) -> None:
        self.community = community
        self.waiting: dict[int, asyncio.Future[Response]] = {}
        self.problem: str | None = None  # the last bad datagram or socket error, for the timeout's message

    def datagram_received(self, data: bytes, addr: object) -> None:
        try:
            response = decode_response(data, self.community)
        except MalformedReply as exc:
            self.problem = f"a malformed reply ({exc})"
            return
        answer = self.waiting.pop(response.request_id, None)  # a late answer to an earlier request: dropped
        if answer is not None and not answer.done():
            answer.set_result(response)

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, ConnectionRefusedError):
            self.problem = "the host answered that nothing listens on that UDP port"
        else:
            self.problem = f"a socket error ({exc})"


class Channel:
    """One device's SNMPv2c conversation over a UDP socket connected to it (the kernel drops
    datagrams from any other address). Requests go one at a time; a reply is matched by its
    request id, and a try that gets no valid reply within ``timeout`` is sent again, ``retries``
    times, with the same request id."""

    def __init__(self, transport: asyncio.DatagramTransport, protocol: _Protocol, timeout: float,
                 retries: int) -> None:
        self._transport, self._protocol = transport, protocol
        self.timeout, self.retries = timeout, retries
        self._next_id = random.getrandbits(30)

    @classmethod
    async def open(cls, host: str, port: int, community: str, timeout: float, retries: int) -> Channel:
        loop = asyncio.get_running_loop()
        protocol = _Protocol(community.encode())
        transport, _ = await loop.create_datagram_endpoint(lambda: protocol, remote_addr=(host, port))
        return cls(transport, protocol, timeout, retries)

    async def request(self, kind: int, oids: Sequence[Oid], non_repeaters: int = 0,
                      max_repetitions: int = 0) -> Response:
        self._next_id = request_id = (self._next_id + 1) & 0x7FFFFFFF
        message = encode_request(kind, request_id, self._protocol.community, oids, non_repeaters, max_repetitions)
        answer: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._protocol.waiting[request_id] = answer
        self._protocol.problem = None
        try:
            for _ in range(self.retries + 1):
                self._transport.sendto(message)
                done, _ = await asyncio.wait((answer,), timeout=self.timeout)
                if done:
                    return answer.result()
            raise NoAnswer(self._protocol.problem)
        finally:
            self._protocol.waiting.pop(request_id, None)

    def close(self) -> None:
        self._transport.close()
