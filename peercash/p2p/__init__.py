"""Layer 2: the peer-to-peer network — wire protocol, peers, addresses, connections, sync and relay.

May import ``peercash.consensus``, ``peercash.chain`` and ``peercash.mempool``; never ``rpc``,
``node``, ``tools`` or ``wallet``. Called by ``node.py`` (which wires it) and, for address and
peer information, by the RPC through the services ``node.py`` builds.

Modules, one job each:

* ``netaddress`` — peer addresses on every BIP155 network (text, v1 and v2 wire forms, Core's
  routability rules).
* ``messages`` — one immutable class per message with one ``encode``/``decode`` pair; protocol
  versions, service bits and the per-message limits.
* ``codec`` — framing: network magic, command, length, checksum; an incremental, bounded
  ``FrameDecoder``.
* ``netgroup``, ``addrman``, ``addrrelay`` — network groups, the address manager
  (``peers.dat``), per-peer address rate limits.
* ``peer`` — one connection (an ``asyncio.Protocol``): handshake, bounded send and receive
  buffers with back-pressure, ping, timeouts, byte counters.
* ``banman`` — manual bans (``banlist.json``) and discouragement.
* ``eviction`` — which inbound peer to drop when the slots are full (a pure function).
* ``socks5`` — the SOCKS5 client for ``-proxy``.
* ``seeds`` — DNS and fixed seeds per network.
* ``connman`` — the connection manager: listening, outbound slots, seeds, addresses, bans,
  misbehaviour; the ``MessageHandler`` protocol the sync layer implements.
* ``scheduler`` — which peer's next message the loop handles (least loop time first).
* ``fairqueue`` — the validation thread's per-peer queues (least CPU time first).
* ``headersync``, ``blocksync``, ``sync`` — header pre-sync, block download, and the sync
  manager (headers-first IBD, block relay, compact blocks).
* ``compact`` — BIP152 short ids and block reconstruction.
* ``txrequest``, ``orphanage``, ``txrelay`` — transaction request tracking, the orphan pool,
  and transaction relay.

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
