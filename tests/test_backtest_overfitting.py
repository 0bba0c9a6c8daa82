"""Deflated Sharpe ratio and probability of backtest overfitting, against hand computation.

The hand computations use plain Python (``statistics``, ``math``, ``itertools``) on lists,
step by step as the papers write them; the library works on arrays. Seeded synthetic data
with a known truth (pure noise, one trial with a real edge) check what the numbers mean.
"""

from __future__ import annotations

import itertools
import math
import statistics
from statistics import NormalDist

import numpy as np
import pytest

from titan_lib.backtest.overfitting import (
    EULER_GAMMA,
    backtest_overfitting,
    deflated_sharpe,
    deflated_sharpe_ratio,
    probability_of_backtest_overfitting,
)
from titan_lib.exceptions import ParameterError

PHI = NormalDist()


def hand_sharpe(values: list[float]) -> float:
    mean = sum(values) / len(values)
    sd = statistics.stdev(values)
    if sd == 0.0:
        return 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    return mean / sd


def hand_dsr(columns: list[list[float]], best: int, n_trials: int | None = None) -> float:
    sharpes = [hand_sharpe(c) for c in columns]
    n = len(columns) if n_trials is None else n_trials
    sd_sharpe = math.sqrt(statistics.variance(sharpes))
    sr0 = sd_sharpe * (
        (1 - EULER_GAMMA) * PHI.inv_cdf(1 - 1 / n) + EULER_GAMMA * PHI.inv_cdf(1 - 1 / (n * math.e))
    )
    x = columns[best]
    t = len(x)
    mean = sum(x) / t
    m2 = sum((v - mean) ** 2 for v in x) / t
    m3 = sum((v - mean) ** 3 for v in x) / t
    m4 = sum((v - mean) ** 4 for v in x) / t
    skew = m3 / m2**1.5
    kurt = m4 / m2**2
    sr = sharpes[best]
    return PHI.cdf(
        (sr - sr0) * math.sqrt(t - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    )


def average_rank(values: list[float], index: int) -> float:
    below = sum(1 for v in values if v < values[index])
    equal = sum(1 for v in values if v == values[index])
    return below + (equal + 1) / 2


def hand_logits(columns: list[list[float]], n_splits: int) -> list[float]:
    t = len(columns[0]) - len(columns[0]) % n_splits
    size = t // n_splits
    logits = []
    for chosen in itertools.combinations(range(n_splits), n_splits // 2):
        rows_in = [i for b in chosen for i in range(b * size, (b + 1) * size)]
        rows_out = [
            i for b in range(n_splits) if b not in chosen for i in range(b * size, (b + 1) * size)
        ]
        is_sr = [hand_sharpe([c[i] for i in rows_in]) for c in columns]
        oos_sr = [hand_sharpe([c[i] for i in rows_out]) for c in columns]
        winner = is_sr.index(max(is_sr))
        w = average_rank(oos_sr, winner) / (len(columns) + 1)
        logits.append(math.log(w / (1 - w)))
    return logits


def test_dsr_of_a_small_case_equals_the_hand_computation() -> None:
    columns = [
        [0.010, -0.004, 0.007, 0.002, -0.001, 0.012, 0.003, -0.006, 0.009],
        [0.001, 0.002, -0.003, 0.004, 0.000, -0.002, 0.001, 0.003, -0.001],
        [-0.005, 0.008, -0.002, 0.006, -0.007, 0.004, 0.001, -0.003, 0.002],
    ]
    returns = np.array(columns).T
    for best in range(3):
        assert deflated_sharpe_ratio(returns, best) == pytest.approx(
            hand_dsr(columns, best), rel=1e-12, abs=1e-15
        )
    deflated = deflated_sharpe(returns, 0, n_trials=40)
    assert deflated.dsr == pytest.approx(hand_dsr(columns, 0, 40), rel=1e-12)
    assert deflated.n_trials == 40
    assert deflated.sharpe == pytest.approx(hand_sharpe(columns[0]), rel=1e-12)
    assert deflated.kurtosis > 1.0


def test_dsr_benchmark_uses_the_euler_mascheroni_formula() -> None:
    rng = np.random.default_rng(3)
    returns = rng.normal(0.0, 0.01, (250, 4))
    result = deflated_sharpe(returns, 1, n_trials=100)
    sharpes = returns.mean(axis=0) / returns.std(axis=0, ddof=1)
    v = statistics.variance([float(s) for s in sharpes])
    expected = math.sqrt(v) * (
        (1 - 0.5772156649015329) * PHI.inv_cdf(1 - 1 / 100)
        + 0.5772156649015329 * PHI.inv_cdf(1 - 1 / (100 * math.e))
    )
    assert result.sr0 == pytest.approx(expected, rel=1e-12)
    assert result.sharpe_variance == pytest.approx(v, rel=1e-12)


def test_more_trials_considered_deflate_more() -> None:
    rng = np.random.default_rng(5)
    returns = rng.normal(0.0005, 0.01, (500, 10))
    values = [deflated_sharpe_ratio(returns, 0, n_trials=n) for n in (10, 100, 10_000)]
    assert values[0] > values[1] > values[2]


def test_one_trial_is_the_probabilistic_sharpe_ratio_against_zero() -> None:
    x = [0.01, -0.002, 0.004, 0.006, -0.001, 0.003]
    mean = sum(x) / len(x)
    m2 = sum((v - mean) ** 2 for v in x) / len(x)
    skew = sum((v - mean) ** 3 for v in x) / len(x) / m2**1.5
    kurt = sum((v - mean) ** 4 for v in x) / len(x) / m2**2
    sr = hand_sharpe(x)
    expected = PHI.cdf(
        sr * math.sqrt(len(x) - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    )
    assert deflated_sharpe_ratio(np.array(x), 0) == pytest.approx(expected, rel=1e-12)


def test_pbo_of_a_literal_two_trial_case() -> None:
    # Trial A: [1, 3 | -1, -3]; trial B: [0, 1 | 1, 2]. S = 2 gives two splits.
    # Block 0 in-sample: A (Sharpe 2/sqrt 2) beats B (0.5/sqrt 0.5); out-of-sample A has
    # -2/sqrt 2 < 1.5/sqrt 0.5, rank 1, w = 1/3, logit = -ln 2. Block 1 in-sample: B wins
    # and out-of-sample B (0.707) < A (1.414): again rank 1. PBO = 1.
    returns = np.array([[1.0, 0.0], [3.0, 1.0], [-1.0, 1.0], [-3.0, 2.0]])
    result = backtest_overfitting(returns, n_splits=2)
    assert result.pbo == 1.0
    np.testing.assert_allclose(result.logits, [-math.log(2.0), -math.log(2.0)], rtol=1e-15)
    np.testing.assert_array_equal(result.is_best, [0, 1])
    reverse = backtest_overfitting(returns[::-1], n_splits=2)
    assert reverse.pbo == 1.0


def test_pbo_equals_the_hand_computation_with_ties_and_dropped_rows() -> None:
    columns = [
        [0.3, -0.1, 0.2, 0.5, -0.4, 0.1, 0.0, 0.2, -0.3, 0.6, 9.0],
        [0.1, 0.1, -0.2, 0.3, 0.2, -0.1, 0.4, -0.2, 0.1, 0.0, -9.0],
        [0.1, 0.1, -0.2, 0.3, -0.5, 0.2, 0.1, 0.3, 0.1, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    ]
    # T = 11, S = 4: the last 3 rows are dropped (the +-9 must not count), blocks of 2;
    # trials 1 and 2 share their first two blocks, so some out-of-sample ranks tie.
    returns = np.array(columns).T
    result = backtest_overfitting(returns, n_splits=4)
    logits = hand_logits(columns, 4)
    assert result.n_periods_used == 8
    np.testing.assert_allclose(result.logits, logits, rtol=1e-12, atol=1e-15)
    ranks = result.relative_ranks * 5
    assert np.any(ranks != np.round(ranks))  # a tie gives a half rank
    expected = sum(1 for v in logits if v <= 0) / len(logits)
    assert probability_of_backtest_overfitting(returns, n_splits=4) == expected


def test_pbo_of_three_trials_six_splits_equals_the_hand_computation() -> None:
    rng = np.random.default_rng(11)
    returns = rng.normal(0.0, 1.0, (37, 3))
    columns = [[float(v) for v in returns[:, j]] for j in range(3)]
    result = backtest_overfitting(returns, n_splits=6)
    np.testing.assert_allclose(result.logits, hand_logits(columns, 6), rtol=1e-10)
    assert result.logits.shape == (math.comb(6, 3),)


def test_pure_noise_gives_pbo_near_one_half_and_no_significant_dsr() -> None:
    pbos = []
    significant = 0
    seeds = 200
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        returns = rng.normal(0.0, 0.01, (240, 20))
        pbos.append(probability_of_backtest_overfitting(returns, n_splits=8))
        best = int(np.argmax(returns.mean(axis=0) / returns.std(axis=0, ddof=1)))
        significant += deflated_sharpe_ratio(returns, best) >= 0.95
    standard_error = float(np.std(pbos)) / math.sqrt(seeds)
    assert abs(float(np.mean(pbos)) - 0.5) < 4 * standard_error
    rate = significant / seeds
    assert rate <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / seeds)


def test_a_trial_with_a_real_edge_has_low_pbo_and_high_dsr() -> None:
    rng = np.random.default_rng(7)
    returns = rng.normal(0.0, 0.01, (750, 30))
    returns[:, 12] += 0.003
    best = int(np.argmax(returns.mean(axis=0) / returns.std(axis=0, ddof=1)))
    assert best == 12
    assert deflated_sharpe_ratio(returns, best, n_trials=300) > 0.99
    result = backtest_overfitting(returns, n_splits=16)
    assert result.pbo < 0.05
    assert (result.is_best == 12).mean() > 0.95


@pytest.mark.parametrize(
    ("returns", "best", "kwargs", "match"),
    [
        (np.zeros((5, 2, 2)), 0, {}, "T x N"),
        (np.ones((2, 2)), 0, {}, "at least 3 periods"),
        (np.array([[0.1, 0.2], [np.nan, 0.1], [0.3, 0.0]]), 0, {}, "row 1, column 0"),
        (np.array([[0.1, 0.2], [0.2, 0.1], [0.3, 0.0]]), 2, {}, "0..1"),
        (np.array([[0.1, 0.2], [0.2, 0.1], [0.3, 0.0]]), 0, {"n_trials": 1}, ">= the 2"),
        (np.array([[0.1, 0.0], [0.1, 0.1], [0.1, 0.0]]), 0, {}, "constant"),
        (np.array([[0.1], [0.2], [0.0]]), 0, {"n_trials": 5}, "at least 2 trials"),
        ([["a", "b"]], 0, {}, "array of numbers"),
    ],
)
def test_dsr_rejects_bad_input_with_a_clear_error(
    returns: object, best: int, kwargs: dict[str, int], match: str
) -> None:
    with pytest.raises(ParameterError, match=match):
        deflated_sharpe_ratio(returns, best, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("shape", "n_splits", "match"),
    [
        ((40, 1), 4, "at least 2 trials"),
        ((40, 3), 5, "even"),
        ((40, 3), 0, "even"),
        ((40, 3), 26, "between 2 and 24"),
        ((40, 3), 2.0, "whole number"),
        ((7, 3), 8, "too large for 7 rows"),
        ((3, 3), 2, "too large"),
    ],
)
def test_pbo_rejects_bad_input_with_a_clear_error(
    shape: tuple[int, int], n_splits: int, match: str
) -> None:
    returns = np.random.default_rng(0).normal(size=shape)
    with pytest.raises(ParameterError, match=match):
        probability_of_backtest_overfitting(returns, n_splits=n_splits)
