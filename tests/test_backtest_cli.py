"""``titan backtest`` on a real local store holding the bundled sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from titan_lib.cli import main
from titan_lib.data import ingest


def run(args: list[str]) -> int:
    """Run the CLI; the exit code (0 when it returns normally)."""
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_pair_and_sweep_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = str(tmp_path / "store")
    ingest("sample", store=store)
    assert run(["backtest", "pair", "KO", "PEP", "--beta", "1.0", "--start", "2015-01-01",
          "--commission-bps", "2", "--store", store]) == 0  # fmt: skip
    stats = json.loads(capsys.readouterr().out)
    assert stats["n_trades"] >= 1 and stats["commission_paid"] > 0
    out = tmp_path / "grid.parquet"
    assert run(["backtest", "sweep", "KO", "PEP", "--beta", "1.0", "--entry", "1.5,2", "--exit",
          "0,0.5", "--window", "20,60", "--output", str(out), "--store", store]) == 0  # fmt: skip
    assert "sharpe" in capsys.readouterr().out
    import polars as pl

    assert pl.read_parquet(out).height == 8
    bad = ["backtest", "sweep", "KO", "PEP", "--beta", "1", "--exit", "3", "--store", store]
    assert run(bad) == 1
    assert "exit 3 >= entry 2" in capsys.readouterr().err
