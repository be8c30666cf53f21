"""The shared framework of the functional tests (``tests/functional/``): real processes, real peers.

Tests import it as ``framework`` (pyproject's pytest ``pythonpath`` puts ``tests/functional`` on
``sys.path``; the tests are collected with ``--import-mode=importlib``, so there is no
``conftest`` import and no ``__init__.py`` in ``tests/functional`` itself).

Pieces:

- ``framework.bcoin`` — bcoin 1.0.2, the foreign node of the interop tests.
  ``ensure_bcoin() -> Path`` installs it from npm once per machine into
  ``~/.cache/peercash-tests/bcoin-1.0.2`` (or ``$PEERCASH_BCOIN_DIR``), under an ``flock`` and
  through a temporary directory renamed into place, so xdist workers never install twice or see
  half an install; ``BcoinInstallError`` says when node/npm are missing or npm failed (with
  npm's stderr). ``BcoinNode(datadir)`` runs one regtest node (chain in memory, wallet on) on
  free loopback ports, optionally inside a ``netns.Namespace``; ``rpc(method, *params)`` and
  ``wallet_rpc``/``wallet_http`` talk to it, raising ``BcoinRpcError(code, message)``; helpers
  ``mine``, ``getblockcount``, ``getbestblockhash``, ``wait_for_height``, ``wait_for_tip``,
  ``add_peer``, ``remove_peer``, ``peers``, ``wait_for_peers``, ``set_network_active`` (emulated:
  bcoin has no ``setnetworkactive``), ``stop`` (RPC, then SIGTERM, then SIGKILL) and ``kill``.
  Its console log is ``datadir/bcoin.log``; leaving its ``with`` block by an exception prints the
  log's tail. ``to_bcoin_address``/``from_bcoin_address`` translate between Core's regtest (or
  any) address form and bcoin's regtest one. ``make_chain_with_txs(node, blocks, txs_per_block)``
  has bcoin's own wallet pay legacy, native and nested segwit outputs in every block after
  maturity, and spend witness coins once segwit is active (from block 432).
- ``framework.netns`` — Linux network namespaces as extra hosts, for root only: ``available()``
  / ``unavailable_reason()``, ``Namespace()`` (a context manager that always deletes it; ``run``,
  ``popen``, ``exec`` inside; ``connect(host, port)`` from the test process), ``link(a, b,
  subnet)`` for a veth pair with 10.200.SUBNET.1/.2 that exist only inside those namespaces,
  ``Veth.set_up(False)`` for a partition, ``cleanup_stale()``.
- ``framework.p2p`` — ``P2PConnection``, a raw-bytes peer for any node's P2P port (chosen or
  broken handshake, any frame or bytes, stop reading, how and when the node closed it), also
  on the accepting side: ``P2PConnection.listen`` serves the connections a node opens.
- ``framework.util`` — ``wait_until(predicate, timeout, interval, what)`` (raises
  ``TimeoutError`` naming ``what``), ``process_rss(pid)``, ``tree_rss(pid)``, ``tail(path)``.
- Real peercash nodes are ``peercash.tools.nodeproc.NodeProcess``.

A typical interop test::

    from framework.bcoin import BcoinNode, ensure_bcoin, make_chain_with_txs

    @pytest.mark.slow
    def test_sync_from_bcoin(tmp_path):
        ensure_bcoin()
        with BcoinNode(tmp_path / "bcoin") as b:
            hashes = make_chain_with_txs(b, 520)
            ...  # start a NodeProcess with --connect 127.0.0.1:{b.port}, wait for hashes[-1]

Every process a test starts is stopped by it, also when it fails: use the context managers.
Nothing here sends traffic past this machine: loopback and namespaces only, bcoin without DNS
seeds, and with its external-address DNS queries disabled (``no_external_dns.js``).
"""
