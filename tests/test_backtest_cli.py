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
    report = json.loads(capsys.readouterr().out)
    stats = report["stats"]
    assert stats["n_trades"] >= 1 and stats["commission_paid"] > 0
    assert report["sample"] == "in-sample" and report["hedge"]["method"] == "given"
    assert run(["backtest", "pair", "KO", "PEP", "--start", "2015-01-02", "--formation", "250",
                "--store", store]) == 0  # fmt: skip
    default = json.loads(capsys.readouterr().out)
    assert default["sample"] == "out-of-sample" and default["start"] == "2015-01-02"
    assert default["hedge"]["method"] == "ols-formation" and default["hedge"]["nobs"] == 250
    assert default["hedge"]["formation_end"] < default["start"]
    assert run(["backtest", "pair", "KO", "PEP", "--start", "2015-01-02", "--formation", "250",
                "--hedge-method", "tls", "--store", store]) == 0  # fmt: skip
    tls = json.loads(capsys.readouterr().out)
    assert tls["hedge"]["method"] == "tls-formation"
    assert tls["hedge"]["formation_end"] == default["hedge"]["formation_end"]
    assert tls["hedge"]["beta"] != default["hedge"]["beta"]
    assert run(["backtest", "pair", "KO", "PEP", "--hedge-method", "lasso", "--store", store]) == 1
    assert "hedge_method must be one of ols, tls, got 'lasso'" in capsys.readouterr().err
    assert run(["backtest", "pair", "KO", "PEP", "--beta", "0.9", "--fitted-through",
                "2014-12-31", "--start", "2015-01-02", "--store", store]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["sample"] == "out-of-sample"
    out = tmp_path / "grid.parquet"
    assert run(["backtest", "sweep", "KO", "PEP", "--beta", "1.0", "--entry", "1.5,2", "--exit",
          "0,0.5", "--window", "20,60", "--output", str(out), "--pairs-considered", "190",
          "--store", store]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "sharpe" in printed and "best row (in-sample choice)" in printed
    assert "over 1520 trials" in printed  # 8 combinations x 190 pairs considered
    import polars as pl

    assert pl.read_parquet(out).height == 8
    bad = ["backtest", "sweep", "KO", "PEP", "--beta", "1", "--exit", "3", "--store", store]
    assert run(bad) == 1
    assert "exit 3 >= entry 2" in capsys.readouterr().err
