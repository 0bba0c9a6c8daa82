"""Overfitting control for a choice among many backtests: deflated Sharpe and PBO.

Both measures take the per-period returns of every trial that was tried (a ``T x N``
array: rows are periods, columns are trials, e.g. the combinations of a parameter sweep)
and judge the trial that was picked.

- :func:`deflated_sharpe_ratio` (Bailey & Lopez de Prado, 2014, "The Deflated Sharpe
  Ratio: Correcting for Selection Bias, Backtest Overfitting and Non-Normality", Journal
  of Portfolio Management 40(5)): the probability that the chosen trial's true Sharpe
  ratio exceeds the Sharpe ratio the best of ``N`` skill-less trials is expected to reach.
- :func:`probability_of_backtest_overfitting` (Bailey, Borwein, Lopez de Prado & Zhu,
  2015, "The Probability of Backtest Overfitting", Journal of Computational Finance
  20(4)): combinatorially symmetric cross-validation (CSCV); the share of in-sample /
  out-of-sample splits in which the in-sample winner ranks in the bottom half
  out-of-sample.

Conventions. Sharpe ratios here are per period (not annualised): the mean return over
the sample standard deviation (ddof 1). Pass excess returns (``r - rf`` per period) when
the risk-free rate is not zero. A trial whose returns are constant has no Sharpe ratio; it
is taken as 0 when the constant is 0 (a trial that never holds a position) and as
``+/-inf`` otherwise (the sign of the constant), so flat trials rank below any trial with
a positive mean return and above any with a negative one.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps

from titan_lib.exceptions import ParameterError

EULER_GAMMA = 0.5772156649015329
"""The Euler-Mascheroni constant, as in the expected maximum of ``N`` normal draws."""

MAX_SPLITS = 24
"""Largest ``n_splits`` of CSCV: ``C(24, 12)`` = 2,704,156 splits."""

_CHUNK_VALUES = 4_000_000
"""Splits per vectorised step of CSCV: about this many floats of (split, block, trial)."""


@dataclass(frozen=True)
class DeflatedSharpe:
    """The deflated Sharpe ratio of one trial and the figures it is made of.

    Attributes
    ----------
    dsr
        The deflated Sharpe ratio: probability (0 to 1) that the chosen trial's true
        Sharpe ratio exceeds ``sr0``. 0.95 or more is significant at 5%.
    sharpe
        Per-period Sharpe ratio of the chosen trial (ddof 1).
    sr0
        Benchmark: expected maximum per-period Sharpe ratio of ``n_trials`` skill-less
        trials, ``sqrt(V) ((1 - g) Phi^-1(1 - 1/N) + g Phi^-1(1 - 1/(N e)))``.
    sharpe_variance
        ``V``: variance (ddof 1) of the per-period Sharpe ratios of the trials given.
    n_trials
        ``N``: number of trials the choice was made among.
    n_periods
        ``T``: number of return periods.
    skewness, kurtosis
        Skewness and non-excess (Pearson) kurtosis of the chosen trial's returns (moment
        estimators, normal distribution: 0 and 3).
    best
        Column index of the chosen trial.
    """

    dsr: float
    sharpe: float
    sr0: float
    sharpe_variance: float
    n_trials: int
    n_periods: int
    skewness: float
    kurtosis: float
    best: int

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready fields."""
        return {
            "dsr": self.dsr,
            "sharpe": self.sharpe,
            "sr0": self.sr0,
            "sharpe_variance": self.sharpe_variance,
            "n_trials": self.n_trials,
            "n_periods": self.n_periods,
            "skewness": self.skewness,
            "kurtosis": self.kurtosis,
            "best": self.best,
        }


@dataclass(frozen=True)
class BacktestOverfitting:
    """The outcome of combinatorially symmetric cross-validation (CSCV).

    Attributes
    ----------
    pbo
        Probability of backtest overfitting: share of splits with ``logit <= 0``.
    logits
        One per split: ``ln(w / (1 - w))`` with ``w`` the out-of-sample relative rank of
        the in-sample best trial.
    relative_ranks
        ``w = rank / (N + 1)`` per split (rank 1 = worst out-of-sample, average ranks for
        ties).
    is_best
        Column index of the in-sample best trial per split (the first on ties).
    n_splits
        ``S``: number of contiguous blocks.
    n_periods_used
        Rows used: ``T - T mod S`` (the last ``T mod S`` rows are dropped).
    """

    pbo: float
    logits: NDArray[np.float64]
    relative_ranks: NDArray[np.float64]
    is_best: NDArray[np.int64]
    n_splits: int
    n_periods_used: int

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready summary (the per-split arrays are left out)."""
        return {
            "pbo": self.pbo,
            "n_splits": self.n_splits,
            "n_combinations": int(self.logits.shape[0]),
            "n_periods_used": self.n_periods_used,
            "median_logit": float(np.median(self.logits)),
        }


def deflated_sharpe_ratio(returns: ArrayLike, best: int, *, n_trials: int | None = None) -> float:
    """Deflated Sharpe ratio (Bailey & Lopez de Prado, 2014) of the chosen trial.

    Parameters
    ----------
    returns
        ``T x N`` per-period returns (excess of the risk-free rate) of the ``N`` trials,
        one column each, no NaN.
    best
        Column index of the chosen trial.
    n_trials
        Number of trials the choice was really made among, when more were considered than
        the columns given (e.g. every parameter combination times every pair of the
        universe that was looked at). Default: ``N``. Must be at least ``N``. The
        variance of the trial Sharpe ratios is always estimated from the columns given.

    Returns
    -------
    float
        ``Phi((SR - SR0) sqrt(T - 1) / sqrt(1 - skew SR + (kurt - 1) / 4 SR^2))``, a
        probability. With a single trial (``n_trials == 1``) ``SR0`` is 0 (no selection)
        and this is the probabilistic Sharpe ratio against zero.

    Raises
    ------
    ParameterError
        Bad shape, NaN or infinite returns, ``best`` out of range, ``n_trials`` below
        ``N``, a chosen trial with constant returns.
    """
    return deflated_sharpe(returns, best, n_trials=n_trials).dsr


def deflated_sharpe(
    returns: ArrayLike, best: int, *, n_trials: int | None = None
) -> DeflatedSharpe:
    """As :func:`deflated_sharpe_ratio`, with every figure of the computation."""
    r = _returns_matrix(returns, min_rows=3)
    n_periods, n_cols = r.shape
    if isinstance(best, bool) or not isinstance(best, int | np.integer):
        raise ParameterError(f"best must be a column index, got {best!r}", {"parameter": "best"})
    best = int(best)
    if not 0 <= best < n_cols:
        raise ParameterError(
            f"best must be a column index in 0..{n_cols - 1}, got {best}",
            {"parameter": "best", "n_trials": n_cols},
        )
    trials = n_cols if n_trials is None else n_trials
    if isinstance(trials, bool) or not isinstance(trials, int | np.integer) or trials < n_cols:
        raise ParameterError(
            f"n_trials must be a whole number >= the {n_cols} columns given, got {n_trials!r}",
            {"parameter": "n_trials"},
        )
    trials = int(trials)
    if trials > 1 and n_cols < 2:
        raise ParameterError(
            f"n_trials={trials} needs the returns of at least 2 trials to estimate the "
            "variance of their Sharpe ratios, got 1 column",
            {"parameter": "returns"},
        )
    chosen = r[:, best]
    if np.ptp(chosen) == 0.0:
        raise ParameterError(
            f"the chosen trial (column {best}) has constant returns: no Sharpe ratio",
            {"parameter": "best", "column": best},
        )
    sharpes = _sharpe_ratios(r.mean(axis=0), r.std(axis=0, ddof=1))
    if not np.isfinite(sharpes).all():
        column = int(np.flatnonzero(~np.isfinite(sharpes))[0])
        raise ParameterError(
            f"trial (column {column}) has constant non-zero returns: its Sharpe ratio is infinite",
            {"parameter": "returns", "column": column},
        )
    sharpe = float(sharpes[best])
    variance = float(np.var(sharpes, ddof=1)) if n_cols > 1 else 0.0
    sr0 = expected_max_sharpe(variance, trials) if trials > 1 else 0.0
    skewness = float(sps.skew(chosen, bias=True))
    kurtosis = float(sps.kurtosis(chosen, fisher=False, bias=True))
    denominator = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if not denominator > 0.0:
        raise ParameterError(
            f"the chosen trial (column {best}) has a degenerate return distribution "
            "(two values): the Sharpe ratio's standard error is zero",
            {"parameter": "returns", "column": best},
        )
    z = (sharpe - sr0) * math.sqrt(n_periods - 1) / math.sqrt(denominator)
    return DeflatedSharpe(
        dsr=float(sps.norm.cdf(z)),
        sharpe=sharpe,
        sr0=sr0,
        sharpe_variance=variance,
        n_trials=trials,
        n_periods=n_periods,
        skewness=skewness,
        kurtosis=kurtosis,
        best=best,
    )


def expected_max_sharpe(variance: float, n_trials: int) -> float:
    """Expected maximum of ``n_trials`` skill-less Sharpe ratios with this variance.

    ``sqrt(V) ((1 - g) Phi^-1(1 - 1/N) + g Phi^-1(1 - 1/(N e)))``, ``g`` the
    Euler-Mascheroni constant (Bailey & Lopez de Prado, 2014, eq. for ``SR0``).
    """
    if n_trials < 2:
        raise ParameterError(f"the expected maximum needs >= 2 trials, got {n_trials}")
    if not variance >= 0.0:
        raise ParameterError(f"variance must be >= 0, got {variance!r}")
    n = float(n_trials)
    return math.sqrt(variance) * (
        (1.0 - EULER_GAMMA) * float(sps.norm.ppf(1.0 - 1.0 / n))
        + EULER_GAMMA * float(sps.norm.ppf(1.0 - 1.0 / (n * math.e)))
    )


def probability_of_backtest_overfitting(returns: ArrayLike, n_splits: int = 16) -> float:
    """Probability of backtest overfitting (Bailey, Borwein, Lopez de Prado & Zhu, 2015).

    Combinatorially symmetric cross-validation: the last ``T mod S`` rows are dropped and
    the rest cut into ``S`` contiguous blocks of equal length. For each of the
    ``C(S, S/2)`` ways to pick ``S/2`` blocks as in-sample (the other blocks, in order,
    are out-of-sample), the trial with the best in-sample Sharpe ratio is found (the first
    on ties), its out-of-sample Sharpe ratio ranked among all ``N`` trials (1 = worst,
    average ranks for ties), ``w = rank / (N + 1)`` and ``logit = ln(w / (1 - w))``.

    Parameters
    ----------
    returns
        ``T x N`` per-period returns of ``N >= 2`` trials, no NaN.
    n_splits
        ``S``: an even number of blocks, 2 to :data:`MAX_SPLITS`, with ``T // S >= 1`` and
        at least 2 rows per half.

    Returns
    -------
    float
        PBO: the share of splits with ``logit <= 0`` (the in-sample winner at or below
        the out-of-sample median).

    Raises
    ------
    ParameterError
        Bad shape, NaN or infinite returns, fewer than two trials, ``n_splits`` odd, below
        2, above :data:`MAX_SPLITS` or more than the rows allow.
    """
    return backtest_overfitting(returns, n_splits).pbo


def backtest_overfitting(returns: ArrayLike, n_splits: int = 16) -> BacktestOverfitting:
    """As :func:`probability_of_backtest_overfitting`, with the logit of every split."""
    r = _returns_matrix(returns, min_rows=2)
    n_periods, n_trials = r.shape
    if n_trials < 2:
        raise ParameterError(
            f"PBO needs at least 2 trials (columns), got {n_trials}", {"parameter": "returns"}
        )
    if isinstance(n_splits, bool) or not isinstance(n_splits, int | np.integer):
        raise ParameterError(
            f"n_splits must be an even whole number, got {n_splits!r}",
            {"parameter": "n_splits"},
        )
    splits = int(n_splits)
    if splits < 2 or splits % 2 or splits > MAX_SPLITS:
        raise ParameterError(
            f"n_splits must be even and between 2 and {MAX_SPLITS}, got {splits}",
            {"parameter": "n_splits"},
        )
    block = n_periods // splits
    if block < 1 or block * splits // 2 < 2:
        raise ParameterError(
            f"n_splits={splits} is too large for {n_periods} rows: each of the {splits} "
            "blocks needs a row and each half at least 2",
            {"parameter": "n_splits", "rows": n_periods},
        )
    used = block * splits
    blocks = r[:used].reshape(splits, block, n_trials)
    block_mean = blocks.mean(axis=1)
    block_m2 = ((blocks - block_mean[:, None, :]) ** 2).sum(axis=1)
    half = splits // 2
    combos = np.array(list(itertools.combinations(range(splits), half)), dtype=np.int64)
    everything = np.ones(splits, dtype=bool)
    is_best = np.empty(combos.shape[0], dtype=np.int64)
    ranks = np.empty(combos.shape[0])
    step = max(1, _CHUNK_VALUES // (splits * n_trials))
    for lo in range(0, combos.shape[0], step):
        part = combos[lo : lo + step]
        in_sample = np.zeros((part.shape[0], splits), dtype=bool)
        np.put_along_axis(in_sample, part, True, axis=1)
        is_sharpe = _half_sharpes(block_mean, block_m2, in_sample, block)
        oos_sharpe = _half_sharpes(block_mean, block_m2, everything & ~in_sample, block)
        chosen = np.argmax(is_sharpe, axis=1)
        is_best[lo : lo + step] = chosen
        ranks[lo : lo + step] = sps.rankdata(oos_sharpe, method="average", axis=1)[
            np.arange(part.shape[0]), chosen
        ]
    w = ranks / (n_trials + 1)
    logits = np.log(w / (1.0 - w))
    return BacktestOverfitting(
        pbo=float(np.mean(logits <= 0.0)),
        logits=logits,
        relative_ranks=w,
        is_best=is_best,
        n_splits=splits,
        n_periods_used=used,
    )


def _half_sharpes(
    block_mean: NDArray[np.float64],
    block_m2: NDArray[np.float64],
    members: NDArray[np.bool_],
    block: int,
) -> NDArray[np.float64]:
    """Sharpe ratios (splits x trials) of the rows of the blocks flagged in ``members``.

    Pools equal-length blocks exactly: the mean is the mean of block means and the sum of
    squared deviations adds each block's own to ``block * (block mean - mean)^2``.
    """
    k = int(members[0].sum())
    index = np.nonzero(members)[1].reshape(members.shape[0], k)
    means = block_mean[index]
    mean = means.mean(axis=1)
    m2 = block_m2[index].sum(axis=1) + block * ((means - mean[:, None, :]) ** 2).sum(axis=1)
    sd = np.sqrt(m2 / (k * block - 1))
    return _sharpe_ratios(mean, sd)


def _sharpe_ratios(mean: NDArray[np.float64], sd: NDArray[np.float64]) -> NDArray[np.float64]:
    """``mean / sd``; 0 for a constant zero, ``+/-inf`` for another constant."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = mean / sd
    flat = sd == 0.0
    out[flat] = np.where(mean[flat] == 0.0, 0.0, np.copysign(np.inf, mean[flat]))
    return out


def _returns_matrix(returns: ArrayLike, *, min_rows: int) -> NDArray[np.float64]:
    try:
        r = np.asarray(returns, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"returns must be a T x N array of numbers: {exc}", {"parameter": "returns"}
        ) from exc
    if r.ndim == 1:
        r = r[:, None]
    if r.ndim != 2 or r.shape[1] < 1:
        raise ParameterError(
            f"returns must be a T x N array (periods x trials), got shape {r.shape}",
            {"parameter": "returns", "shape": list(r.shape)},
        )
    if r.shape[0] < min_rows:
        raise ParameterError(
            f"returns need at least {min_rows} periods (rows), got {r.shape[0]}",
            {"parameter": "returns", "shape": list(r.shape)},
        )
    bad = ~np.isfinite(r)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise ParameterError(
            f"returns must be finite; row {row}, column {column} is {r[row, column]!r}",
            {"parameter": "returns", "row": row, "column": column},
        )
    return r
