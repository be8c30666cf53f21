"""Framing: the header's four fields, the incremental decoder fed in every way, and what is fatal.

Fatal (the connection is dropped, as Core's ``V1Transport::readHeader`` returns -1): the wrong
magic and a declared length over the limit. Not fatal (Core drops the message and keeps the
peer): a bad checksum and an invalid command.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peercash.consensus.errors import DecodeError, OversizeError
from peercash.consensus.params import MAIN as MAINNET
from peercash.consensus.params import REGTEST, TESTNET
from peercash.p2p import messages as m
from peercash.p2p.codec import (
    HEADER_SIZE,
    MAX_PROTOCOL_MESSAGE_LENGTH,
    BadMagic,
    Frame,
    FrameDecoder,
    FramingError,
    OversizedMessage,
    checksum,
    command_is_valid,
    encode_frame,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from p2ptools import SETTINGS

MAIN = MAINNET.magic
DEV_REF_VERSION_PAYLOAD = bytes.fromhex(
    "7211010001000000000000"
    "00bc8f5e540000000001000000000000"
    "0000000000000000000000ffffc61b6409208d"
    "010000000000000000000000000000000000ffffcb0071c0208d"
    "128035cbc97953f80f2f5361746f7368693a302e392e332fcf05050001"
)


def feed_all(decoder: FrameDecoder, data: bytes, chunks: list[int]) -> list[Frame]:
    """Feed ``data`` cut at the given chunk sizes (the rest in one piece), checking the buffer bound."""
    frames: list[Frame] = []
    pos = 0
    for size in [*chunks, len(data)]:
        frames += decoder.feed(data[pos : pos + size])
        assert decoder.buffered <= decoder.max_payload + HEADER_SIZE
        pos += size
        if pos >= len(data):
            break
    return frames


# -- the header ---------------------------------------------------------------------------------


def test_magics() -> None:
    assert MAIN.hex() == "f9beb4d9"
    assert TESTNET.magic.hex() == "0b110907"
    assert REGTEST.magic.hex() == "fabfb5da"
    assert MAX_PROTOCOL_MESSAGE_LENGTH == 4_000_000 and HEADER_SIZE == 24


def test_version_frame_vector() -> None:
    # The Developer Reference's version message, header included.
    frame = bytes.fromhex(
        "f9beb4d9" "76657273696f6e0000000000" "65000000" "5f1a69d2"
    ) + DEV_REF_VERSION_PAYLOAD  # fmt: skip
    assert encode_frame(MAIN, b"version", DEV_REF_VERSION_PAYLOAD) == frame
    (got,) = FrameDecoder(MAIN).feed(frame)
    assert got == Frame(b"version", DEV_REF_VERSION_PAYLOAD)
    version = m.decode_message(got.command, got.payload)
    assert isinstance(version, m.Version) and version.user_agent == "/Satoshi:0.9.3/"


def test_empty_payload_vectors() -> None:
    assert checksum(b"").hex() == "5df6e0e2"
    assert encode_frame(MAIN, b"verack", b"").hex() == (
        "f9beb4d9" "76657261636b000000000000" "00000000" "5df6e0e2"
    )  # fmt: skip
    assert encode_frame(REGTEST.magic, b"sendheaders", b"")[:16] == (
        bytes.fromhex("fabfb5da") + b"sendheaders\x00"
    )


def test_encode_frame_refuses() -> None:
    bad = [
        (b"\xf9\xbe\xb4", b"ping", b""),
        (MAIN, b"", b""),
        (MAIN, b"abcdefghijklm", b""),
        (MAIN, b"pi\x00ng", b""),
        (MAIN, b"ping\x00", b""),
        (MAIN, b"p\xffng", b""),
        (MAIN, b"p\ning", b""),
        (MAIN, b"block", bytes(MAX_PROTOCOL_MESSAGE_LENGTH + 1)),
    ]
    for magic, command, payload in bad:
        with pytest.raises(ValueError):
            encode_frame(magic, command, payload)
    assert len(bad) == 8
    assert len(encode_frame(MAIN, b"abcdefghijkl", b"")) == 24
    assert len(encode_frame(MAIN, b"block", bytes(MAX_PROTOCOL_MESSAGE_LENGTH))) == 4_000_024
    with pytest.raises(ValueError):
        encode_frame(MAIN, b"tx", bytes(11), max_payload=10)


# Core's IsMessageTypeValid: printable ASCII 0x20..0x7E, then NULs only.
COMMANDS = {
    b"ping" + bytes(8): True,
    b"abcdefghijkl": True,
    b"with space\x00\x00": True,
    b"~" + bytes(11): True,
    bytes(12): True,
    b"pi\x00ng" + bytes(7): False,
    b"verack" + bytes(5) + b"\x01": False,
    b"ping\x01" + bytes(7): False,
    b"\x1f" + bytes(11): False,
    b"\x7f" + bytes(11): False,
    b"\x80ping" + bytes(7): False,
    b"\xff" * 12: False,
}


def test_command_validity() -> None:
    assert {c: command_is_valid(c) for c in COMMANDS} == COMMANDS
    assert len(COMMANDS) == 12


def raw_frame(magic: bytes, command12: bytes, payload: bytes, check: bytes | None = None) -> bytes:
    assert len(command12) == 12
    return (
        magic
        + command12
        + len(payload).to_bytes(4, "little")
        + (checksum(payload) if check is None else check)
        + payload
    )


def test_invalid_commands_are_dropped_not_fatal() -> None:
    stream = b"".join(raw_frame(MAIN, c, b"\x01\x02") for c in COMMANDS) + encode_frame(
        MAIN, b"ping", bytes(8)
    )
    frames = FrameDecoder(MAIN).feed(stream)
    assert [f.command_ok for f in frames[:-1]] == list(COMMANDS.values())
    assert all(f.checksum_ok for f in frames)
    assert frames[-1] == Frame(b"ping", bytes(8))
    assert frames[5].command == b"pi"  # up to the first NUL, as Core's GetMessageType
    assert frames[4].command == b""
    assert sum(not f.ok for f in frames) == 7


# -- the decoder --------------------------------------------------------------------------------


def handshake_stream() -> tuple[bytes, list[m.Message]]:
    version = m.Version.decode(DEV_REF_VERSION_PAYLOAD)
    msgs: list[m.Message] = [
        version,
        m.WtxidRelay(),
        m.SendAddrV2(),
        m.Verack(),
        m.Ping(7),
        m.SendHeaders(),
        m.FeeFilter(1000),
        m.Inv((m.InvItem(m.InvType.MSG_WTX, bytes(32)),)),
    ]
    return b"".join(encode_frame(MAIN, x.command, x.encode()) for x in msgs), msgs


def test_byte_by_byte() -> None:
    stream, msgs = handshake_stream()
    decoder = FrameDecoder(MAIN)
    frames: list[Frame] = []
    completed_at = []
    for i in range(len(stream)):
        got = decoder.feed(stream[i : i + 1])
        if got:
            completed_at.append(i + 1)
        frames += got
        assert decoder.buffered <= MAX_PROTOCOL_MESSAGE_LENGTH + HEADER_SIZE
        assert decoder.buffered < 24 + 101  # here: never more than one header and one payload
    assert [m.decode_message(f.command, f.payload) for f in frames] == msgs
    ends = []
    pos = 0
    for x in msgs:
        pos += 24 + len(x.encode())
        ends.append(pos)
    assert completed_at == ends  # each frame as soon as its last byte arrives, not later
    assert decoder.buffered == 0


@st.composite
def frame_streams(draw: st.DrawFn) -> tuple[bytes, list[Frame]]:
    frames = draw(
        st.lists(
            st.builds(
                Frame,
                st.sampled_from([b"ping", b"tx", b"block", b"inv", b"abcdefghijkl", b"x"]),
                st.binary(max_size=300),
            ),
            max_size=8,
        )
    )
    return b"".join(encode_frame(MAIN, f.command, f.payload) for f in frames), frames


@SETTINGS
@given(frame_streams(), st.lists(st.integers(0, 400), max_size=30))
def test_any_chunking(stream_frames: tuple[bytes, list[Frame]], chunks: list[int]) -> None:
    stream, frames = stream_frames
    decoder = FrameDecoder(MAIN, max_payload=300)
    assert feed_all(decoder, stream, chunks) == frames
    assert decoder.buffered == 0


def test_one_large_payload_in_chunks() -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    stream = encode_frame(MAIN, b"block", payload) + encode_frame(MAIN, b"ping", bytes(8))
    decoder = FrameDecoder(MAIN)
    chunks = [65536] * (len(stream) // 65536)
    frames = feed_all(decoder, stream, chunks)
    assert [f.command for f in frames] == [b"block", b"ping"] and frames[0].payload == payload
    (whole,) = FrameDecoder(MAIN).feed(memoryview(stream)[: 24 + len(payload)])
    assert whole.payload == payload and whole.ok
    assert FrameDecoder(MAIN).feed(bytearray(stream))[1] == Frame(b"ping", bytes(8))


def test_bad_checksum_is_dropped_not_fatal() -> None:
    ping = encode_frame(MAIN, b"ping", bytes(8))
    corrupt_sum = raw_frame(MAIN, b"ping" + bytes(8), bytes(8), check=b"\x00\x00\x00\x00")
    corrupt_body = ping[:-1] + b"\x01"
    decoder = FrameDecoder(MAIN)
    frames = decoder.feed(corrupt_sum + ping + corrupt_body + ping)
    assert [(f.checksum_ok, f.command_ok, f.ok) for f in frames] == [
        (False, True, False),
        (True, True, True),
        (False, True, False),
        (True, True, True),
    ]
    assert frames[2].payload == bytes(7) + b"\x01"
    assert decoder.failed is None


# -- fatal errors -------------------------------------------------------------------------------


def test_bad_magic() -> None:
    ping = encode_frame(MAIN, b"ping", bytes(8))
    checked = 0
    for bad in (
        encode_frame(TESTNET.magic, b"ping", bytes(8)),
        encode_frame(REGTEST.magic, b"ping", bytes(8)),
        b"GET / HTTP/1.1\r\n\r\n",
        b"\xf9\xbe\xb4\xd8" + ping[4:],  # one bit off in the last magic byte
        b"\x16\x03\x01\x02\x00",  # a TLS hello
    ):
        with pytest.raises(BadMagic) as info:
            FrameDecoder(MAIN).feed(bad)
        assert info.value.frames == ()
        # After good frames in the same call: they ride on the error.
        decoder = FrameDecoder(MAIN)
        with pytest.raises(BadMagic) as info:
            decoder.feed(ping + ping + bad)
        assert [f.command for f in info.value.frames] == [b"ping", b"ping"]
        assert decoder.failed is not None and decoder.buffered == 0
        with pytest.raises(BadMagic):
            decoder.feed(ping)  # failed for good
        checked += 1
    assert checked == 5


def test_bad_magic_detected_at_the_first_wrong_byte() -> None:
    bad = b"\xf9\xbe\x00" + bytes(30)
    decoder = FrameDecoder(MAIN)
    assert decoder.feed(bad[:1]) == [] and decoder.feed(bad[1:2]) == []
    with pytest.raises(BadMagic):
        decoder.feed(bad[2:3])


def test_oversized_length() -> None:
    for declared in (MAX_PROTOCOL_MESSAGE_LENGTH + 1, 0x02000000, 0xFFFFFFFF):
        header = MAIN + b"block" + bytes(7) + declared.to_bytes(4, "little") + bytes(4)
        decoder = FrameDecoder(MAIN)
        for i in range(19):
            assert decoder.feed(header[i : i + 1]) == []
        with pytest.raises(OversizedMessage) as info:
            decoder.feed(header[19:20])  # the last byte of the length field
        assert isinstance(info.value, OversizeError) and isinstance(info.value, FramingError)
        assert decoder.buffered == 0
        with pytest.raises(OversizedMessage):
            decoder.feed(b"")
    at_limit = MAIN + b"block" + bytes(7) + MAX_PROTOCOL_MESSAGE_LENGTH.to_bytes(4, "little")
    decoder = FrameDecoder(MAIN)
    assert decoder.feed(at_limit + bytes(4) + bytes(1000)) == []
    assert decoder.buffered == 1000 and decoder.failed is None


def test_small_limit() -> None:
    decoder = FrameDecoder(MAIN, max_payload=8)
    assert decoder.feed(encode_frame(MAIN, b"ping", bytes(8))) == [Frame(b"ping", bytes(8))]
    with pytest.raises(OversizedMessage):
        decoder.feed(encode_frame(MAIN, b"tx", bytes(9)))


def test_decoder_arguments() -> None:
    for magic, limit in ((b"\x00" * 3, 10), (MAIN, -1), (MAIN, 2**32)):
        with pytest.raises(ValueError):
            FrameDecoder(magic, limit)


@SETTINGS
@given(
    st.one_of(
        st.binary(max_size=200),
        st.binary(max_size=200).map(lambda b: MAIN + b),
        st.binary(max_size=40).map(lambda b: MAIN + b"ping" + bytes(8) + b),
    ),
    st.lists(st.integers(1, 50), max_size=10),
)
def test_garbage_is_frames_or_a_fatal_error(data: bytes, chunks: list[int]) -> None:
    decoder = FrameDecoder(MAIN, max_payload=64)
    try:
        frames = feed_all(decoder, data, chunks)
    except (BadMagic, OversizedMessage):
        assert decoder.failed is not None and decoder.buffered == 0
        return
    for f in frames:
        assert len(f.payload) <= 64
    assert decoder.buffered <= 64 + HEADER_SIZE
    assert issubclass(BadMagic, DecodeError)
