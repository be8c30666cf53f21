"""P2P options in the configuration: Core's names, defaults and parameter interaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from peercash.config import ConfigError, load_config
from peercash.node import Node


def test_defaults(tmp_path: Path) -> None:
    cfg = load_config({"datadir": tmp_path, "network": "regtest"})
    assert cfg.listen and cfg.dnsseed and cfg.fixedseeds
    assert (cfg.maxconnections, cfg.peertimeout, cfg.maxsendbuffer, cfg.maxreceivebuffer) == (
        125,
        60,
        5000,
        5000,
    )
    opts = Node(cfg).conn_options()
    assert opts.port == 18444 and opts.max_send_buffer == 5_000_000
    assert opts.timeouts.handshake == 60.0 and not opts.connect_only


def test_core_parameter_interaction(tmp_path: Path) -> None:
    base = {"datadir": tmp_path, "network": "regtest"}
    cfg = load_config({**base, "connect": ["127.0.0.1:1"]})
    assert not cfg.listen and not cfg.dnsseed  # -connect: no listening, no DNS seeds
    assert load_config({**base, "connect": ["127.0.0.1:1"], "listen": True}).listen
    assert load_config({**base, "connect": ["127.0.0.1:1"], "bind": ["127.0.0.1"]}).listen
    assert not load_config({**base, "proxy": "127.0.0.1:9050"}).listen
    assert load_config({**base, "proxy": "127.0.0.1:9050", "listen": True}).listen
    assert load_config({**base, "proxy": "0"}).proxy is None
    assert Node(load_config({**base, "connect": ["0"]})).conn_options().connect_only


def test_bad_values(tmp_path: Path) -> None:
    base = {"datadir": tmp_path, "network": "regtest"}
    with pytest.raises(ConfigError, match="peertimeout must be a positive integer"):
        load_config({**base, "peertimeout": 0})
    with pytest.raises(ConfigError, match="Invalid -proxy address or hostname"):
        load_config({**base, "proxy": "127.0.0.1:99999"})
    with pytest.raises(ConfigError):
        load_config({**base, "bind": ["127.0.0.1:0"]})
    assert load_config({**base, "maxconnections": -5}).maxconnections == 0


def test_network_sections(tmp_path: Path) -> None:
    (tmp_path / "peercash.conf").write_text(
        "bind=1.2.3.4\nseednode=5.6.7.8\n[regtest]\nbind=127.0.0.1\nnodnsseed=1\n"
    )
    cfg = load_config({"datadir": tmp_path, "network": "regtest"})
    assert cfg.bind == ("127.0.0.1",)  # a top-level bind is mainnet's only
    assert cfg.seednode == ("5.6.7.8",) and not cfg.dnsseed
    assert any("-bind only applied on regtest" in w for w in cfg.warnings)


def test_cluster_limit_options(tmp_path: Path) -> None:
    base = {"datadir": tmp_path, "network": "regtest"}
    cfg = load_config(base)
    assert (cfg.limitclustercount, cfg.limitclustersize) == (64, 101)
    cfg = load_config({**base, "limitclustercount": 10, "limitclustersize": 20})
    assert (cfg.limitclustercount, cfg.limitclustersize) == (10, 20)
    with pytest.raises(ConfigError, match=r"^limitclustercount must be less than or equal to 64$"):
        load_config({**base, "limitclustercount": 65})
    # -maxmempool must hold 40 clusters of the largest size: 5 MB by default, 1 MB for 20 kvB.
    with pytest.raises(ConfigError, match=r"^-maxmempool must be at least 5 MB$"):
        load_config({**base, "maxmempool": 4})
    assert load_config({**base, "maxmempool": 5}).maxmempool == 5
    assert load_config({**base, "maxmempool": 1, "limitclustersize": 20}).maxmempool == 1
    with pytest.raises(ConfigError, match=r"^-maxmempool must be at least 2 MB$"):
        load_config({**base, "maxmempool": 1, "limitclustersize": 26})
