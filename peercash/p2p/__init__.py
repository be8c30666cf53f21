"""Layer 2: the peer-to-peer network — wire protocol, and (later) peers, addresses and sync.

May import ``peercash.consensus``, ``peercash.chain`` and ``peercash.mempool``; never ``rpc``,
``node``, ``tools`` or ``wallet``. Called by ``node.py`` (which wires it) and, for address and
peer information, by the RPC through the services ``node.py`` builds.

Modules so far, one job each:

* ``netaddress`` — peer addresses on every BIP155 network (text, v1 and v2 wire forms, Core's
  routability rules).
* ``messages`` — one immutable class per message with one ``encode``/``decode`` pair; protocol
  versions, service bits and the per-message limits.
* ``codec`` — framing: network magic, command, length, checksum; an incremental, bounded
  ``FrameDecoder``.

Error contract: bytes from a peer that do not decode raise ``DecodeError`` subclasses only —
``messages.MessageError`` (carrying the command) from ``decode_message``, ``codec.BadMagic`` and
``codec.OversizedMessage`` from the frame decoder (both fatal to the connection). A bad checksum or
a malformed command is not an exception: the frame comes back marked so the peer layer can drop
it and count it, as Core does. Building a message or an address from out-of-range values raises
``ValueError``: that is a programming error, not a peer's.

Concurrency contract: addresses and messages are immutable and safe to share between threads and
processes; decoding and encoding are pure functions. A ``FrameDecoder`` holds one connection's
partial input and belongs to that connection's reader (one task on the event loop); it is not
thread-safe.
"""
