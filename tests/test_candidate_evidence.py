"""Evidence for the publish gate from prices: trials, overfitting, walk-forward, stability."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from titan_lib.backtest import Costs, backtest_pair
from titan_lib.backtest.candidate_evidence import (
    candidate_evidence,
    overfitting_evidence,
    pair_walk_forward,
    rule_trial_returns,
)
from titan_lib.backtest.overfitting import (
    deflated_sharpe_ratio,
    probability_of_backtest_overfitting,
)
from titan_lib.backtest.publish_gate import evaluate_candidate
from titan_lib.backtest.rules import PairRule
from titan_lib.core.zscore import ZScoreSpec
from titan_lib.data import sample_prices
from titan_lib.exceptions import ParameterError
from titan_lib.signals.fit import GateSettings

GRID = {"entry": [1.5, 2.0], "exit": [0.0, 0.5], "window": [40, 60], "stop": [4.0]}
COSTS = Costs(1.0, 2.0, 0.0, 50.0)


@pytest.fixture(scope="module")
def prices() -> pl.DataFrame:
    return sample_prices(["KO", "PEP", "HD", "MSFT", "SP500"]).filter(
        pl.col("date").is_between(pl.date(2012, 1, 1), pl.date(2016, 12, 31))
    )


@pytest.fixture(scope="module")
def candidates() -> list[dict]:
    return [
        {"y": "KO", "x": "PEP", "hedge_ratio": 0.8, "intercept": 0.1, "qvalue": 0.02,
         "half_life": 20.0, "start": "2015-01-02", "end": "2016-12-30"},
        {"y": "HD", "x": "MSFT", "hedge_ratio": 0.6, "intercept": 1.0, "qvalue": 0.2,
         "half_life": 40.0},
    ]  # fmt: skip


@pytest.fixture(scope="module")
def trials(prices, candidates):
    return rule_trial_returns(prices, candidates, GRID, costs=COSTS, start="2013-01-02")


def test_trial_returns_are_the_backtests_of_every_rule_on_every_pair(prices, trials) -> None:
    assert trials.returns.shape[1] == 2 * 8 and trials.trials.height == 16
    assert trials.trials["pair"].to_list() == ["KO/PEP"] * 8 + ["HD/MSFT"] * 8
    j = trials.column("HD/MSFT", {"entry": 2.0, "exit": 0.5, "window": 60, "stop": 4.0})
    one = backtest_pair(
        prices, "HD", "MSFT", beta=0.6, alpha=1.0, entry=2.0, exit=0.5, stop=4.0, window=60,
        costs=COSTS, start="2013-01-02", engine="numba",
    )  # fmt: skip
    expected = one.equity["returns"].to_numpy()[1:]
    assert trials.dates[0] == one.equity["date"][1]
    np.testing.assert_allclose(trials.returns[:, j], expected, rtol=1e-9, atol=1e-15)
    with pytest.raises(ParameterError, match="no trial of KO/PEP"):
        trials.column("KO/PEP", {"entry": 3.0})


def test_overfitting_evidence_is_the_papers_measures(trials) -> None:
    out = overfitting_evidence(trials, 3, n_trials=16 * 190)
    assert out["deflated_sharpe"] == deflated_sharpe_ratio(trials.returns, 3, n_trials=16 * 190)
    assert out["pbo"] == probability_of_backtest_overfitting(trials.returns, n_splits=16)
    assert out["n_trials"] == 16 * 190 and out["pbo_splits"] == 16


def test_candidate_evidence_feeds_the_gate(prices, candidates, trials) -> None:
    rule = PairRule(entry=2.0, exit=0.5, stop=4.0, zscore=ZScoreSpec.rolling(60))
    gate = GateSettings(kind="volatility", blocked=(1,))
    evidence, details = candidate_evidence(
        prices, candidates[0], rule=rule, grid=GRID, trials=trials, n_trials=16 * 190,
        gate=gate, train=504, test=126, costs=COSTS,
    )  # fmt: skip
    wf = pair_walk_forward(prices, "KO", "PEP", grid=GRID, base=rule, train=504, test=126,
                           costs=COSTS)  # fmt: skip
    assert evidence.oos_sharpe == pytest.approx(wf.stats["sharpe"])
    assert evidence.is_sharpe == pytest.approx(wf.degradation["in_sample"])
    assert details["walk_forward"]["sample"] == "out-of-sample"
    assert details["regime_gate"]["sample"] == "out-of-sample"
    assert evidence.gate_sharpe_with == pytest.approx(details["regime_gate"]["with_gate"]["sharpe"])
    stability = details["stability"]
    assert evidence.stability == stability["fraction_significant"]
    assert stability["n_periods"] >= 2
    assert evidence.qvalue == 0.02 and evidence.has_gate
    verdict = evaluate_candidate(evidence)
    assert verdict.criteria[0].name == "qvalue" and verdict.criteria[0].passed
    assert set(wf.selections["y"].to_list()) <= {"KO"}


def test_trials_can_fit_each_hedge_before_the_evidence_window(prices, candidates) -> None:
    from titan_lib.backtest.pair import formation_hedge

    out = rule_trial_returns(
        prices, candidates, GRID, costs=COSTS, start="2014-01-02", formation=250
    )
    fitted = formation_hedge(prices, "HD", "MSFT", formation=250, start="2014-01-02")
    assert fitted["formation_end"] < "2014-01-02" == fitted["trading_start"]
    hd = out.trials.filter(pl.col("pair") == "HD/MSFT")
    assert hd["beta"].unique().to_list() == [fitted["beta"]]
    j = out.column("HD/MSFT", {"entry": 1.5, "exit": 0.0, "window": 40, "stop": 4.0})
    one = backtest_pair(
        prices, "HD", "MSFT", formation=250, start="2014-01-02", entry=1.5, exit=0.0,
        stop=4.0, window=40, costs=COSTS, engine="numba",
    )  # fmt: skip
    assert one.sample == "out-of-sample"
    np.testing.assert_allclose(
        out.returns[:, j], one.equity["returns"].to_numpy()[1:], rtol=1e-9, atol=1e-15
    )
