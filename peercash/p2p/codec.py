"""Framing of the v1 transport: magic, command, length, checksum; an incremental, bounded decoder.

Every message on the wire is a 24-byte header and a payload::

    magic (4) | command (12, ASCII, NUL-padded) | payload length (uint32 LE) | checksum (4)

where the checksum is the first 4 bytes of the double SHA-256 of the payload.

What is fatal, as in Core's ``V1Transport`` (src/net.cpp, ``readHeader`` and
``GetReceivedMessage``):

* **Fatal** — the connection must be dropped: the wrong network magic (:class:`BadMagic`) and a
  declared length over the limit (:class:`OversizedMessage`; Core's ``MAX_PROTOCOL_MESSAGE_LENGTH``,
  4,000,000 bytes). Both are detected from the header alone, before any payload is buffered, and
  leave the decoder failed: every later ``feed`` raises again.
* **Not fatal** — the message is dropped and the connection kept: a checksum that does not match
  and a command that is not printable ASCII followed only by NUL padding. The frame is returned
  with ``checksum_ok``/``command_ok`` false so the peer layer can drop and count it.

Nothing here knows what a command means; ``messages.decode_message`` does. This module sees no
other part of peercash but the consensus hashing and error types.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from peercash.consensus.errors import DecodeError, OversizeError
from peercash.consensus.hashing import hash256

__all__ = [
    "CHECKSUM_SIZE",
    "COMMAND_SIZE",
    "HEADER_SIZE",
    "MAX_PROTOCOL_MESSAGE_LENGTH",
    "BadMagic",
    "Frame",
    "FrameDecoder",
    "FramingError",
    "OversizedMessage",
    "checksum",
    "command_is_valid",
    "encode_frame",
]

MAX_PROTOCOL_MESSAGE_LENGTH = 4_000_000
"""The largest payload accepted (src/net.h: ``static const unsigned int
MAX_PROTOCOL_MESSAGE_LENGTH = 4 * 1000 * 1000;``) — a block of the maximum serialized size fits."""

HEADER_SIZE = 24
COMMAND_SIZE = 12
CHECKSUM_SIZE = 4

_HEADER = struct.Struct("<4s12sI4s")
_LENGTH = struct.Struct("<I")
_LENGTH_END = 4 + COMMAND_SIZE + 4


class FramingError(DecodeError):
    """A fatal framing error: the connection must be dropped.

    ``frames`` holds the complete frames the same ``feed`` call decoded before the error (the
    peer may still log or count them; it should not act on them)."""

    def __init__(self, message: str, frames: tuple[Frame, ...] = ()) -> None:
        super().__init__(message)
        self.frames = frames


class BadMagic(FramingError):
    """The bytes where a header should start are not this network's magic."""


class OversizedMessage(FramingError, OversizeError):
    """A header declares a payload longer than the decoder's limit."""


def checksum(payload: bytes) -> bytes:
    """The 4-byte frame checksum: the start of the payload's double SHA-256."""
    return hash256(payload)[:CHECKSUM_SIZE]


def command_is_valid(raw: bytes) -> bool:
    """Core's ``CMessageHeader::IsMessageTypeValid``: printable ASCII (0x20‥0x7E), then only NULs.

    (An all-NUL command passes, as in Core; it names no message, so it is then ignored.)"""
    command = raw.rstrip(b"\x00")
    return b"\x00" not in command and all(0x20 <= b <= 0x7E for b in command)


@dataclass(frozen=True, slots=True)
class Frame:
    """One framed message. ``command`` is the header's command up to its first NUL (as Core's
    ``GetMessageType``); ``checksum_ok`` and ``command_ok`` say whether the peer layer should
    process the frame (``ok``) or drop it and keep the connection."""

    command: bytes
    payload: bytes
    checksum_ok: bool = True
    command_ok: bool = True

    @property
    def ok(self) -> bool:
        return self.checksum_ok and self.command_ok


def encode_frame(
    magic: bytes,
    command: bytes,
    payload: bytes,
    max_payload: int = MAX_PROTOCOL_MESSAGE_LENGTH,
) -> bytes:
    """Header and payload ready to send. ``ValueError`` for a magic that is not 4 bytes, a command
    that is empty, longer than 12 bytes or not printable ASCII, or a payload over ``max_payload``
    (a peer would drop the connection)."""
    if len(magic) != 4:
        raise ValueError("the magic is 4 bytes")
    if not 0 < len(command) <= COMMAND_SIZE or not command_is_valid(command):
        raise ValueError(f"bad command {command!r}")
    if len(payload) > max_payload:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {max_payload}")
    return _HEADER.pack(magic, command, len(payload), checksum(payload)) + payload


class FrameDecoder:
    """Turns a connection's byte stream into :class:`Frame` objects, as the bytes arrive.

    It holds at most one header and one declared payload: never more than
    ``max_payload + 24`` bytes, whatever is fed. A wrong magic is detected from the first byte
    that differs, an oversized length as soon as the length field is in. After a fatal error
    (:class:`BadMagic`, :class:`OversizedMessage`) the decoder stays failed.

    One decoder per connection, used by that connection's reader only (not thread-safe).
    """

    __slots__ = ("_buf", "_checksum", "_command", "_error", "_length", "_magic", "_max_payload")

    def __init__(self, magic: bytes, max_payload: int = MAX_PROTOCOL_MESSAGE_LENGTH) -> None:
        if len(magic) != 4:
            raise ValueError("the magic is 4 bytes")
        if not 0 <= max_payload <= 0xFFFFFFFF:
            raise ValueError(f"max_payload out of range: {max_payload}")
        self._magic = bytes(magic)
        self._max_payload = max_payload
        self._buf = bytearray()
        self._length = -1  # -1 while reading a header, else the declared payload length
        self._command = b""
        self._checksum = b""
        self._error: FramingError | None = None

    @property
    def buffered(self) -> int:
        """Bytes of a partial header or payload held, waiting for the rest."""
        return len(self._buf)

    @property
    def failed(self) -> FramingError | None:
        """The fatal error that stopped this decoder, if any."""
        return self._error

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Consume ``data``; return the frames it completes, in order (possibly none).

        Raises :class:`BadMagic` or :class:`OversizedMessage` (fatal; ``frames`` on the error holds
        what this call completed before it)."""
        if self._error is not None:
            raise type(self._error)(str(self._error))
        view = memoryview(data).cast("B")
        end = len(view)
        pos = 0
        frames: list[Frame] = []
        buf = self._buf
        while True:
            if self._length < 0:
                if pos >= end:
                    break
                have = len(buf)
                take = min(HEADER_SIZE - have, end - pos)
                buf += view[pos : pos + take]
                pos += take
                self._check_partial_header(have, frames)
                if len(buf) < HEADER_SIZE:
                    break
                _magic, raw_command, self._length, self._checksum = _HEADER.unpack(buf)
                self._command = raw_command
                buf.clear()
            length = self._length
            if not buf and end - pos >= length:
                payload = bytes(view[pos : pos + length])  # the whole payload is here: one copy
                pos += length
            else:
                take = min(length - len(buf), end - pos)
                buf += view[pos : pos + take]
                pos += take
                if len(buf) < length:
                    break
                payload = bytes(buf)
                buf.clear()
            frames.append(self._frame(payload))
        return frames

    def _check_partial_header(self, had: int, frames: list[Frame]) -> None:
        """Fail as soon as the bytes of the header read so far rule it out."""
        buf = self._buf
        if had < 4:
            n = min(len(buf), 4)
            if buf[:n] != self._magic[:n]:
                self._fail(BadMagic(f"wrong network magic {bytes(buf[:n]).hex()}", tuple(frames)))
        if had < _LENGTH_END <= len(buf):
            length = _LENGTH.unpack_from(buf, 4 + COMMAND_SIZE)[0]
            if length > self._max_payload:
                command = bytes(buf[4 : 4 + COMMAND_SIZE]).split(b"\x00", 1)[0]
                self._fail(
                    OversizedMessage(
                        f"{command!r} declares {length} bytes, over {self._max_payload}",
                        tuple(frames),
                    )
                )

    def _fail(self, error: FramingError) -> None:
        self._error = error
        self._buf.clear()
        raise error

    def _frame(self, payload: bytes) -> Frame:
        raw = self._command
        self._length = -1
        return Frame(
            command=raw.split(b"\x00", 1)[0],
            payload=payload,
            checksum_ok=checksum(payload) == self._checksum,
            command_ok=command_is_valid(raw),
        )
