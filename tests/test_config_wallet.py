"""Wallet fee options in the configuration: Core's names, units and defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from peercash.config import ConfigError, load_config


def test_wallet_fee_defaults(tmp_path: Path) -> None:
    cfg = load_config({"datadir": tmp_path, "network": "regtest"})
    assert (cfg.fallbackfee, cfg.mintxfee, cfg.maxtxfee, cfg.walletrbf) == (
        0,
        100,
        10_000_000,
        True,
    )


def test_wallet_fee_options(tmp_path: Path) -> None:
    cfg = load_config(
        {
            "datadir": tmp_path,
            "network": "regtest",
            "fallbackfee": "0.0002",
            "mintxfee": "0.00001",
            "maxtxfee": "0.5",
            "walletrbf": False,
        }
    )
    # BTC/kvB feerates as sat/kvB; -maxtxfee is an amount in BTC, as satoshis.
    assert (cfg.fallbackfee, cfg.mintxfee, cfg.maxtxfee, cfg.walletrbf) == (
        20_000,
        1_000,
        50_000_000,
        False,
    )
    with pytest.raises(ConfigError, match=r"^Invalid amount for -fallbackfee=<amount>: 'x'$"):
        load_config({"datadir": tmp_path, "network": "regtest", "fallbackfee": "x"})
