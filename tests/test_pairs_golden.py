"""Golden tests: every pair of the 20 bundled stocks against statsmodels ``coint``.

Settings: full history and the last ten years; trend "c" and "ct"; autolag "aic" and None
with maxlag 1. statsmodels' results for all 190 pairs under each setting are committed in
``fixtures/golden/coint_reference.json`` (``fixtures/golden/make_reference.py`` regenerates
them, and says when to). A few pairs are recomputed live on every run, so a change in
statsmodels itself shows up here instead of going unnoticed behind the committed values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from fixtures.golden.make_reference import (
    N_SYMBOLS,
    PAIRS,
    REFERENCE,
    SETTINGS,
    WINDOWS,
    golden_panels,
    load_reference,
    panel_digest,
    setting_key,
    statsmodels_coint,
)

from titan_lib.pairs import engle_granger, engle_granger_batch
from titan_lib.pairs.panel import PricePanel

LIVE_PAIRS = [(0, 1), (9, 13), (18, 19)]
"""Recomputed with statsmodels on every run: AAPL/AMD, KO/PEP, WMT/XOM."""


@pytest.fixture(scope="module")
def panels() -> dict[str, PricePanel]:
    panels = golden_panels()
    assert len(panels["full"].symbols) == N_SYMBOLS
    assert not np.isnan(panels["full"].values).any()
    assert panels["10y"].values.shape[0] == WINDOWS["10y"]
    return panels


@pytest.fixture(scope="module")
def reference(panels: dict[str, PricePanel]) -> dict[str, Any]:
    """The committed statsmodels rows, checked to belong to today's sample prices."""
    reference = load_reference()
    for window, panel in panels.items():
        assert reference["digests"][window] == panel_digest(panel), (
            f"the {window} panel changed since {REFERENCE.name} was made: "
            "run tests/fixtures/golden/make_reference.py"
        )
    return reference


@dataclass(frozen=True)
class Case:
    """One window and setting: the panel, statsmodels' committed rows, the keywords."""

    panel: PricePanel
    ref: np.ndarray
    trend: str
    autolag: str | None
    maxlag: int | None

    def engle_granger(self, i: int, j: int) -> Any:
        return engle_granger(
            self.panel.values[:, i],
            self.panel.values[:, j],
            trend=self.trend,  # type: ignore[arg-type]
            autolag=self.autolag,  # type: ignore[arg-type]
            maxlag=self.maxlag,
        )


@pytest.fixture(
    scope="module",
    params=[(w, *s) for s in SETTINGS for w in WINDOWS],
    ids=lambda p: "-".join(map(str, p[1:] + p[:1])),
)
def case(
    request: pytest.FixtureRequest, panels: dict[str, PricePanel], reference: dict[str, Any]
) -> Case:
    """The reference block of one setting as floats, after checking its pair order."""
    window, trend, autolag, maxlag = request.param
    panel = panels[window]
    rows = reference["rows"][setting_key(window, trend, autolag, maxlag)]
    assert [(r[0], r[1]) for r in rows] == [(panel.symbols[i], panel.symbols[j]) for i, j in PAIRS]
    return Case(panel, np.array([r[2:] for r in rows], dtype=float), trend, autolag, maxlag)


def test_batch_equals_statsmodels_coint(case: Case) -> None:
    panel, ref = case.panel, case.ref
    table = engle_granger_batch(panel, trend=case.trend, autolag=case.autolag, maxlag=case.maxlag)  # type: ignore[arg-type]
    assert table.height == 190
    expected_pairs = [(panel.symbols[i], panel.symbols[j]) for i, j in PAIRS]
    assert list(zip(table["y"], table["x"], strict=True)) == expected_pairs
    assert table["reason"].null_count() == 190
    assert np.abs(table["tstat"].to_numpy() - ref[:, 0]).max() <= 1e-8
    assert np.abs(table["pvalue"].to_numpy() - ref[:, 1]).max() <= 1e-8
    assert table["lag"].to_list() == ref[:, 2].astype(int).tolist()
    assert np.abs(table["hedge_ratio"].to_numpy() - ref[:, 3]).max() <= 1e-10
    assert (table["nobs"] == panel.values.shape[0]).all()
    if case.autolag is not None:  # the search is not trivial: several different lags are chosen
        assert len(set(ref[:, 2].astype(int).tolist())) >= 3


def test_single_pair_function_equals_statsmodels_coint(case: Case) -> None:
    for row, (i, j) in enumerate(PAIRS):
        res = case.engle_granger(i, j)
        assert abs(res.tstat - case.ref[row, 0]) <= 1e-8
        assert abs(res.pvalue - case.ref[row, 1]) <= 1e-8
        assert res.lag == int(case.ref[row, 2])
        assert abs(res.hedge_ratio - case.ref[row, 3]) <= 1e-10


def test_statsmodels_today_still_gives_the_committed_values(
    case: Case, reference: dict[str, Any]
) -> None:
    import statsmodels

    job = (case.panel.values, LIVE_PAIRS, case.trend, case.autolag, case.maxlag)
    live = np.array(statsmodels_coint(job))
    committed = case.ref[[PAIRS.index(p) for p in LIVE_PAIRS]]
    drift = (
        f"statsmodels {statsmodels.__version__} differs from the {reference['statsmodels']} "
        f"that made {REFERENCE.name}; check why, then run make_reference.py"
    )
    assert np.abs(live[:, :2] - committed[:, :2]).max() <= 1e-8, drift
    assert live[:, 2].tolist() == committed[:, 2].tolist(), drift
    assert np.abs(live[:, 3] - committed[:, 3]).max() <= 1e-10, drift
    for (i, j), (tstat, pvalue, lag, slope) in zip(LIVE_PAIRS, live, strict=True):
        res = case.engle_granger(i, j)
        assert abs(res.tstat - tstat) <= 1e-8 and abs(res.pvalue - pvalue) <= 1e-8
        assert res.lag == lag and abs(res.hedge_ratio - slope) <= 1e-10
