"""The v2c codec against an independent one (pysnmp/pyasn1), and what it does with datagrams a
network can send: every truncation and corruption is a MalformedReply naming the problem, or a
well-formed answer — never another exception, never a partial answer."""

from __future__ import annotations

import asyncio
import random

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api, rfc1902, rfc1905

from collector.network.config import SnmpConfig
from collector.network.snmp import (
    Credentials,
    PollResult,
    SnmpTimeout,
    get_values,
    poll,
)
from collector.network.snmp_wire import (
    GET,
    GETBULK,
    Absent,
    MalformedReply,
    decode_oid,
    decode_response,
    encode_oid,
    encode_request,
)
from schoolops.units import Seconds
from tests.support import free_udp_port

V2C = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
COMMUNITY = b"s3cret-community"


def pysnmp_response(request_id: int, binds: list[tuple[str, object]], community: bytes = COMMUNITY,
                    status: int = 0, index: int = 0) -> bytes:
    pdu = V2C.GetResponsePDU()
    V2C.apiPDU.set_defaults(pdu)
    V2C.apiPDU.set_request_id(pdu, request_id)
    V2C.apiPDU.set_error_status(pdu, status)
    V2C.apiPDU.set_error_index(pdu, index)
    V2C.apiPDU.set_varbinds(pdu, binds)
    message = V2C.Message()
    V2C.apiMessage.set_defaults(message)
    V2C.apiMessage.set_community(message, community)
    V2C.apiMessage.set_pdu(message, pdu)
    return encoder.encode(message)


VALUES = [
    ("1.3.6.1.2.1.1.1.0", rfc1902.OctetString(b"Linux sw-01 \xe4\xb8\xad\x00"), "Linux sw-01 中"),
    ("1.3.6.1.2.1.1.2.0", rfc1902.ObjectName("1.3.6.1.4.1.8072.3.2.10"), "1.3.6.1.4.1.8072.3.2.10"),
    ("1.3.6.1.2.1.1.3.0", rfc1902.TimeTicks(4294967295), 4294967295),
    ("1.3.6.1.2.1.2.2.1.8.1", rfc1902.Integer(-2147483648), -2147483648),
    ("1.3.6.1.2.1.2.2.1.10.300", rfc1902.Counter32(4294967295), 4294967295),
    ("1.3.6.1.2.1.2.2.1.5.70000", rfc1902.Gauge32(1000000000), 1000000000),
    ("1.3.6.1.2.1.31.1.1.1.6.1", rfc1902.Counter64(2**64 - 1), 2**64 - 1),
    ("1.3.6.1.2.1.4.20.1.1.10.0.0.1", rfc1902.IpAddress("10.0.0.1"), "10.0.0.1"),
    ("1.3.6.1.4.1.2021.10.1.6.1", rfc1902.Opaque(b"\x9f\x78"), b"\x9f\x78".decode("utf-8", "replace")),
    ("2.999.4294967295", rfc1902.Integer(0), 0),
    ("1.3.6.1.2.1.99.1", rfc1905.NoSuchObject(""), Absent.NO_SUCH_OBJECT),
    ("1.3.6.1.2.1.99.2", rfc1905.NoSuchInstance(""), Absent.NO_SUCH_INSTANCE),
    ("1.3.6.1.2.1.99.3", rfc1905.EndOfMibView(""), Absent.END_OF_MIB_VIEW),
]


def test_decodes_every_v2c_type_as_pysnmp_encodes_it() -> None:
    data = pysnmp_response(123456789, [(oid, value) for oid, value, _ in VALUES], status=0)
    response = decode_response(data, COMMUNITY)
    assert response.request_id == 123456789 and response.error_status == 0 and response.error_index == 0
    assert response.varbinds == [(tuple(int(x) for x in oid.split(".")), want) for oid, _, want in VALUES]


def test_error_status_and_index_are_read() -> None:
    data = pysnmp_response(7, [("1.3.6.1.2.1.1.5.0", rfc1902.Integer(0))], status=6, index=1)
    response = decode_response(data, COMMUNITY)
    assert (response.error_status, response.error_index) == (6, 1)


@pytest.mark.parametrize("kind", [GET, GETBULK])
def test_requests_decode_with_pysnmp(kind: int) -> None:
    oids = [(1, 3, 6, 1, 2, 1, 2, 2, 1, 10), (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 4000), (2, 999, 2**32 - 1)]
    data = encode_request(kind, 2**31 - 1, COMMUNITY, oids, 0, 25)
    message, rest = decoder.decode(data, asn1Spec=V2C.Message())
    assert rest == b"" and int(message["version"]) == 1 and bytes(message["community"]) == COMMUNITY
    pdu = V2C.apiMessage.get_pdu(message)
    assert pdu.isSameTypeWith(V2C.GetBulkRequestPDU() if kind == GETBULK else V2C.GetRequestPDU())
    assert int(pdu["request-id"]) == 2**31 - 1
    if kind == GETBULK:
        assert (int(pdu["non-repeaters"]), int(pdu["max-repetitions"])) == (0, 25)
    assert [tuple(name) for name, _ in V2C.apiPDU.get_varbinds(pdu)] == oids


@pytest.mark.parametrize("oid", [(1,), (3, 1), (1, 40), (1, 3, -1), (1, 3, 2**32)])
def test_an_oid_snmp_cannot_carry_is_refused_before_sending(oid: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="OID"):
        encode_oid(oid)


def test_oids_round_trip_through_multi_byte_arcs() -> None:
    rng = random.Random(5)
    for _ in range(500):
        oid = (rng.choice((0, 1, 2)), rng.randrange(40), *(rng.choice((rng.randrange(128), rng.randrange(2**32)))
                                                           for _ in range(rng.randrange(0, 12))))
        assert decode_oid(encode_oid(oid)) == oid


GOOD = pysnmp_response(99, [(oid, value) for oid, value, _ in VALUES])


def test_every_truncation_is_refused_with_a_reason() -> None:
    for cut in range(len(GOOD)):
        with pytest.raises(MalformedReply) as refused:
            decode_response(GOOD[:cut], COMMUNITY)
        assert str(refused.value)


def test_corrupted_datagrams_are_refused_or_well_formed() -> None:
    rng = random.Random(11)
    refused = 0
    for _ in range(3000):
        data = bytearray(GOOD)
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            response = decode_response(bytes(data), COMMUNITY)
        except MalformedReply:
            refused += 1
        else:  # what parses is whole: every varbind a name and a value of a known kind
            assert all(isinstance(o, tuple) and isinstance(v, (int, str, Absent)) for o, v in response.varbinds)
    assert refused > 1000


@pytest.mark.parametrize(("data", "problem"), [
    (pysnmp_response(1, [], community=b"other"), "another community"),
    (GOOD + b"\x00", "bytes after its end"),
    (b"\x30\x80" + GOOD[2:], "length form 0x80"),  # indefinite length: not in SNMP
    (b"\x30\x85\x00\x00\x00\x00\x10", "length form 0x85"),
    (encode_request(GET, 5, COMMUNITY, [(1, 3, 6, 1)]), "not a Response"),
    (b"\x30\x03\x02\x01\x03", "not SNMPv2c"),
])
def test_a_wrong_message_names_what_is_wrong(data: bytes, problem: str) -> None:
    with pytest.raises(MalformedReply, match=problem):
        decode_response(data, COMMUNITY)


def tlv(tag: int, body: bytes) -> bytes:
    assert len(body) < 0x80
    return bytes((tag, len(body))) + body


def hand_response(value: bytes) -> bytes:
    """A v2c Response with one varbind whose value TLV is ``value``, encoded by hand."""
    bind = tlv(0x30, tlv(0x06, b"\x2b\x06\x01\x02\x01\x02\x02\x01\x0a\x01") + value)
    pdu = tlv(0xA2, b"\x02\x01\x09" + b"\x02\x01\x00" * 2 + tlv(0x30, bind))
    return tlv(0x30, b"\x02\x01\x01" + tlv(0x04, COMMUNITY) + pdu)


@pytest.mark.parametrize(("value", "problem"), [
    (b"\x41\x06\x01\x00\x00\x00\x00\x00", "counter"),  # a Counter32 of 6 bytes
    (b"\x46\x0a" + b"\x01" * 10, "counter"),
    (b"\x02\x00", "INTEGER"),
    (b"\x40\x03\x0a\x00\x01", "IpAddress"),
    (b"\x82\x01\x00", "END_OF_MIB_VIEW with contents"),
    (b"\x47\x01\x00", "unknown type 0x47"),
    (b"\x06\x02\x2b\x86", "cut off"),
])
def test_values_of_impossible_shapes_are_refused(value: bytes, problem: str) -> None:
    assert decode_response(hand_response(b"\x41\x01\x07"), COMMUNITY).varbinds[0][1] == 7  # the frame is right
    with pytest.raises(MalformedReply, match=problem):
        decode_response(hand_response(value), COMMUNITY)


class BadDevice(asyncio.DatagramProtocol):
    """A UDP peer on 127.0.0.1 that answers every request with ``reply(request)``."""

    def __init__(self, reply) -> None:  # type: ignore[no-untyped-def]
        self.reply, self.requests = reply, 0

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[no-untyped-def]
        self.requests += 1
        self.transport.sendto(self.reply(data), addr)


def config(port: int) -> SnmpConfig:
    return SnmpConfig(version="2c", port=port, community_secret="snmp.community", timeout=Seconds(0.3), retries=1)


async def test_a_device_answering_garbage_fails_the_poll_naming_it() -> None:
    loop = asyncio.get_running_loop()
    device = BadDevice(lambda request: request[:-3])  # the request cut short: not a response
    transport, _ = await loop.create_datagram_endpoint(lambda: device, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        result: PollResult = await poll(None, "127.0.0.1", config(port),  # type: ignore[arg-type]
                                        Credentials(community="s3cret-community"), None, 0.0)
    finally:
        transport.close()
    assert isinstance(result.error, SnmpTimeout) and result.device.reachable is False
    assert "malformed reply" in str(result.error) and "0.3s x 2 tries" in str(result.error)
    assert device.requests == 2  # the retry went out


async def test_a_reply_to_another_request_id_is_not_taken_as_the_answer() -> None:
    loop = asyncio.get_running_loop()

    def stale(request: bytes) -> bytes:  # a well-formed answer, but to request id 1
        return pysnmp_response(1, [("1.3.6.1.2.1.1.5.0", rfc1902.OctetString(b"intruder"))])

    transport, _ = await loop.create_datagram_endpoint(lambda: BadDevice(stale), local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        with pytest.raises(SnmpTimeout):
            await get_values(None, "127.0.0.1", config(port),  # type: ignore[arg-type]
                             Credentials(community="s3cret-community"), ["1.3.6.1.2.1.1.5.0"])
    finally:
        transport.close()


async def test_nothing_listening_is_named_in_the_timeout() -> None:
    port = free_udp_port()
    with pytest.raises(SnmpTimeout, match="nothing listens on that UDP port"):
        await get_values(None, "127.0.0.1", config(port),  # type: ignore[arg-type]
                         Credentials(community="s3cret-community"), ["1.3.6.1.2.1.1.5.0"])
