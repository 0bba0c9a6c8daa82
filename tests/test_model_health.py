"""Model health on seeded synthetic spreads with known truth: a healthy mean-reverting
spread, a spread that breaks, a spread that stops reverting, stale prices, P&L drawdown and
the loss limit; no look-ahead; the AR(1) against statsmodels on real data; records kept in
the store (local folder and S3 on the moto server)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from titan_lib.core import FitSummary, Provenance, SignalModel, SignalRules, ZScoreSpec, evaluate
from titan_lib.core.model_health import (
    HealthRecord,
    HealthSettings,
    ar1_fit,
    check_health,
    recent_signals,
)
from titan_lib.core.model_health_store import (
    append_health,
    health_history,
    health_record_key,
    latest_health,
)
from titan_lib.core.zscore import EwmaState
from titan_lib.exceptions import (
    ConflictError,
    DataValidationError,
    ParameterError,
    SchemaVersionError,
)
from titan_lib.stores import open_store

SIGMA = 0.01
"""Standard deviation of the spread's innovations (log units)."""
LAST_DAY = date(2022, 12, 28)
"""Last price date of the synthetic series (a Wednesday, an NYSE session)."""
CHECKED = datetime(2023, 1, 1, tzinfo=UTC)


def weekdays_until(last: date, n: int) -> list[str]:
    """``n`` weekdays ending on ``last``, as ISO strings, oldest first."""
    out: list[str] = []
    d = last
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d.isoformat())
        d -= timedelta(days=1)
    return out[::-1]


def ar1_path(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    s = np.zeros(n)
    s[0] = rng.normal(0.0, SIGMA / math.sqrt(max(1e-9, 1.0 - phi * phi))) if phi < 1 else 0.0
    for t in range(1, n):
        s[t] = phi * s[t - 1] + rng.normal(0.0, SIGMA)
    return s


def legs(spread: np.ndarray, seed: int) -> dict[str, list[tuple[str, float]]]:
    """Prices of Y and X with ``log Y - log X = spread`` (beta 1, alpha 0)."""
    rng = np.random.default_rng(seed + 10_000)
    log_x = 4.0 + np.cumsum(rng.normal(0.0, 0.012, spread.size))
    dates = weekdays_until(LAST_DAY, spread.size)
    return {
        "Y": list(zip(dates, np.exp(log_x + spread).tolist(), strict=True)),
        "X": list(zip(dates, np.exp(log_x).tolist(), strict=True)),
    }


def fixed_model(phi: float, stop: float = math.inf) -> SignalModel:
    """A model whose z-score uses the stationary moments of an AR(1) spread with ``phi``."""
    return SignalModel(
        y="Y",
        x="X",
        beta=1.0,
        alpha=0.0,
        zscore=ZScoreSpec.fixed(0.0, SIGMA / math.sqrt(1.0 - phi * phi)),
        rules=SignalRules(entry=2.0, exit=0.5, stop=stop),
        fit=FitSummary(
            start="2020-01-02", end="2020-12-31", nobs=250, half_life=-math.log(2) / math.log(phi)
        ),
        provenance=Provenance(code_version="test", created_at="2021-01-01T00:00:00+00:00"),
    )


def cut(prices: dict[str, list[tuple[str, float]]], day: str) -> dict[str, list]:
    return {s: [(d, c) for d, c in pairs if d <= day] for s, pairs in prices.items()}


# -- known truth ------------------------------------------------------------------------------


def test_a_healthy_mean_reverting_spread_is_healthy() -> None:
    phi = 0.85
    spread = ar1_path(np.random.default_rng(1), 300, phi)
    record = check_health(fixed_model(phi), legs(spread, 1), checked_at=CHECKED)
    assert record.state == "healthy" and record.reasons == () and record.reason == ""
    assert record.as_of == LAST_DAY.isoformat()
    assert record.metrics["beyond_stop_sessions"] == 0
    assert record.metrics["stop_band"] == 4.0  # no stop-loss: the default band
    # the AR(1) of the planted spread's last 60 sessions (60 sessions estimate phi loosely)
    assert record.metrics["ar1_phi"] == pytest.approx(ar1_fit(spread[-60:].tolist())[0], 1e-9)
    assert 0.4 < record.metrics["ar1_phi"] < 1.0  # type: ignore[operator]
    assert record.metrics["reversion_sessions"] == 60


def test_a_spread_beyond_the_stop_band_for_ten_sessions_is_a_breakdown() -> None:
    phi = 0.85
    spread = ar1_path(np.random.default_rng(2), 300, phi)
    std = SIGMA / math.sqrt(1 - phi * phi)
    spread[-12:] += 8.0 * std  # the relation breaks 12 sessions before the end
    prices = legs(spread, 2)
    model = fixed_model(phi)
    dates = [d for d, _ in prices["Y"]]

    record = check_health(model, prices, checked_at=CHECKED)
    assert record.state == "broken"
    assert record.reasons[0].criterion == "breakdown"
    assert record.reasons[0].message == "breakdown: |z| > 4.0 for 12 sessions"
    assert record.reasons[0].values["sessions"] == 12
    assert record.reason.startswith("breakdown: |z| > 4.0 for 12 sessions")

    before = check_health(model, prices, as_of=dates[-13], checked_at=CHECKED)
    assert before.state == "healthy", before.reason
    nine = check_health(model, prices, as_of=dates[-4], checked_at=CHECKED)
    assert nine.state == "warning"
    assert nine.reasons[0].message == "zscore: |z| > 4.0 for 9 sessions (breakdown at 10)"
    ten = check_health(model, prices, as_of=dates[-3], checked_at=CHECKED)
    assert ten.state == "broken" and ten.reasons[0].message.endswith("for 10 sessions")

    # the model's own stop band, when it has one
    stopped = check_health(fixed_model(phi, stop=3.0), prices, checked_at=CHECKED)
    assert stopped.reasons[0].message == "breakdown: |z| > 3.0 for 12 sessions"
    # a longer breakdown threshold turns the same run into a warning
    lenient = HealthSettings(breakdown_sessions=15)
    assert check_health(model, prices, settings=lenient, checked_at=CHECKED).state == "warning"


def test_a_spread_that_stops_reverting_is_a_warning_and_a_healthy_one_rarely() -> None:
    """Power and size of the reversion criterion on 15 seeded spreads each: a random walk
    over the last 120 sessions is flagged (nearly) always; a spread reverting at the
    fitted speed (half-life 2 sessions) (nearly) never."""
    phi = 0.7071  # half-life 2.0
    settings = HealthSettings(lookback_sessions=120)
    model = fixed_model(phi, stop=50.0)  # a band the random walk never reaches
    flagged = {"walk": 0, "healthy": 0}
    for seed in range(15):
        rng = np.random.default_rng(100 + seed)
        healthy = ar1_path(rng, 200, phi)
        walk = np.concatenate([healthy[:80], healthy[79] + np.cumsum(rng.normal(0, SIGMA, 120))])
        for name, spread in (("walk", walk), ("healthy", healthy)):
            record = check_health(model, legs(spread, seed), settings=settings, checked_at=CHECKED)
            assert {r.criterion for r in record.reasons} <= {"reversion"}, record.reason
            if record.reasons:
                assert record.state == "warning"
                assert record.reasons[0].message.startswith("reversion: ")
                flagged[name] += 1
    assert flagged["walk"] >= 13, flagged
    assert flagged["healthy"] <= 1, flagged

    broken = replace(settings, reversion_broken_ratio=3.0)
    rng = np.random.default_rng(7)
    walk = np.cumsum(rng.normal(0, SIGMA, 200))
    record = check_health(model, legs(walk, 7), settings=broken, checked_at=CHECKED)
    assert record.state == "broken" and record.reasons[0].criterion == "reversion"


def test_stale_prices_are_counted_in_nyse_sessions() -> None:
    phi = 0.85
    prices = legs(ar1_path(np.random.default_rng(3), 120, phi), 3)
    model = fixed_model(phi)
    # 2022-12-28 closes at 16:00 New York (21:00 UTC): the same evening it is current
    fresh = check_health(model, prices, now=datetime(2022, 12, 28, 21, 30, tzinfo=UTC))
    assert fresh.state == "healthy" and fresh.metrics["age_sessions"] == 0
    # by the close of 2023-01-05: 29 and 30 December, 3, 4 and 5 January (2 January closed)
    late = datetime(2023, 1, 5, 21, 30, tzinfo=UTC)
    stale = check_health(model, prices, now=late)
    assert stale.state == "warning"
    assert stale.reasons[0].message == (
        "staleness: newest close 2022-12-28 is 5 sessions behind 2023-01-05 (> 1)"
    )
    assert stale.metrics["latest_session"] == "2023-01-05"
    strict = HealthSettings(stale_broken_sessions=4)
    assert check_health(model, prices, now=late, settings=strict).state == "broken"
    with pytest.raises(ParameterError, match="timezone-aware"):
        check_health(model, prices, now=datetime(2023, 1, 5))


def test_drawdown_and_the_per_model_loss_limit() -> None:
    phi = 0.85
    prices = legs(ar1_path(np.random.default_rng(4), 120, phi), 4)
    model = fixed_model(phi)
    dates = [d for d, _ in prices["Y"]]
    limits = HealthSettings(max_loss=5000.0)

    def state(pnl: Any, **kw: Any) -> HealthRecord:
        return check_health(model, prices, settings=limits, pnl=pnl, checked_at=CHECKED, **kw)

    assert state(-1000.0).state == "healthy"
    warned = state(-4100.0)
    assert warned.state == "warning"
    assert [r.message for r in warned.reasons] == ["loss_limit: P&L -4100.0 < -0.8 x 5000.0"]
    broken = state(-5230.0)
    assert broken.state == "broken"
    assert broken.reasons[0].message == "loss_limit: P&L -5230.0 < -5000.0"
    assert broken.metrics["pnl"] == -5230.0

    # a series: peak +3000, now +500: a drawdown of 2500 with the P&L still positive
    limits = HealthSettings(max_loss=5000.0, max_drawdown=2000.0)
    assert state(-1500.0).reasons[0].message == "drawdown: 1500.0 > 0.5 x 2000.0"
    series = [(dates[-30], 0.0), (dates[-20], 3000.0), (dates[-5], 500.0)]
    dd = state(series)
    assert dd.state == "broken" and dd.metrics["drawdown"] == 2500.0
    assert [r.message for r in dd.reasons] == ["drawdown: 2500.0 > 2000.0"]
    # a later loss is not seen by the check of an earlier date
    later = [*series, (dates[-1], -9000.0)]
    early = state(later, as_of=dates[-2])
    assert early.reasons == dd.reasons
    assert (early.metrics["pnl"], early.metrics["drawdown"]) == (500.0, 2500.0)
    verdicts = {(r.criterion, r.state) for r in state(later).reasons}
    assert verdicts == {("drawdown", "broken"), ("loss_limit", "broken")}
    # no limit configured: measured, never judged
    quiet = check_health(model, prices, pnl=-1e9, checked_at=CHECKED)
    assert quiet.state == "healthy" and quiet.metrics["pnl"] == -1e9
    with pytest.raises(DataValidationError, match="ascending"):
        state([(dates[-1], 1.0), (dates[-2], 2.0)])
    # the ledger's P&L of today counts, though the newest price is older
    today = [(dates[-1], 0.0), ("2023-01-06", -6000.0)]
    assert state(today).reasons[0].criterion in ("loss_limit", "drawdown")
    assert state(today).metrics["pnl"] == -6000.0
    with pytest.raises(DataValidationError, match="finite"):
        state([(dates[-1], math.nan)])
    with pytest.raises(DataValidationError, match="must be a number"):
        state([(dates[-1], "a lot")])


# -- no look-ahead ----------------------------------------------------------------------------


def test_the_check_at_t_uses_only_prices_up_to_t() -> None:
    phi = 0.85
    spread = ar1_path(np.random.default_rng(5), 260, phi)
    spread[-15:] += 6.0 * SIGMA / math.sqrt(1 - phi * phi)
    prices = legs(spread, 5)
    dates = [d for d, _ in prices["Y"]]
    rolling = replace(fixed_model(phi), zscore=ZScoreSpec.rolling(40))
    std = SIGMA / math.sqrt(1 - phi * phi)
    fitted_to = dates[100]  # an EWMA model continues from its state at the fit's end
    ewma = replace(
        fixed_model(phi),
        zscore=ZScoreSpec.ewma(
            halflife=20, state=EwmaState(mean=0.0, var=std * std, count=100, as_of=fitted_to)
        ),
        fit=FitSummary(start=dates[0], end=fitted_to, nobs=101, half_life=4.3),
    )
    for model in (fixed_model(phi), rolling, ewma):
        for t in (dates[-40], dates[-12], dates[-6], dates[-1]):
            full = check_health(model, prices, as_of=t, checked_at=CHECKED)
            truncated = check_health(model, cut(prices, t), checked_at=CHECKED)
            assert full == truncated
            # rewriting every price after t changes nothing at t
            scrambled = {
                s: [(d, c * (3.0 if d > t else 1.0)) for d, c in pairs]
                for s, pairs in {"Y": prices["Y"], "X": prices["X"]}.items()
            }
            assert check_health(model, scrambled, as_of=t, checked_at=CHECKED) == full
            assert full.as_of == t


def test_recent_signals_are_the_serving_evaluation_at_each_date() -> None:
    phi = 0.9
    prices = legs(ar1_path(np.random.default_rng(6), 150, phi), 6)
    model = replace(fixed_model(phi), zscore=ZScoreSpec.rolling(30))
    signals = recent_signals(model, prices, 25)
    dates = [d for d, _ in prices["Y"]][-25:]
    assert [s.as_of for s in signals] == dates
    for signal, day in zip(signals, dates, strict=True):
        alone = evaluate(model, cut(prices, day))
        assert signal.zscore == pytest.approx(alone.zscore, rel=1e-12)
        assert signal.spread == alone.spread and signal.position == alone.position


# -- statistics against statsmodels ---------------------------------------------------------------


def test_ar1_fit_matches_statsmodels_and_the_research_half_life_on_real_data() -> None:
    from statsmodels.regression.linear_model import OLS
    from statsmodels.tools.tools import add_constant

    from titan_lib.data import sample_prices
    from titan_lib.pairs.spread_stats import half_life

    wide = (
        sample_prices(["KO", "PEP"])
        .pivot(on="symbol", index="date", values="close")
        .sort("date")
        .tail(250)
    )
    spread = (wide.get_column("KO").log() - wide.get_column("PEP").log()).to_numpy()
    phi, hl = ar1_fit(spread.tolist())
    ols = OLS(spread[1:], add_constant(spread[:-1])).fit()
    assert phi == pytest.approx(float(ols.params[1]), rel=1e-10)
    assert hl == pytest.approx(half_life(spread), rel=1e-9)
    assert ar1_fit([1.0, 2.0, 3.0, 4.0]) == (1.0, math.inf)
    assert math.isnan(ar1_fit([5.0, 5.0, 5.0])[0])


# -- records and settings ---------------------------------------------------------------------


def test_health_record_round_trips_and_refuses_malformed_documents() -> None:
    phi = 0.85
    spread = ar1_path(np.random.default_rng(8), 150, phi)
    spread[-11:] += 8.0 * SIGMA / math.sqrt(1 - phi * phi)
    record = check_health(fixed_model(phi), legs(spread, 8), pnl=-10.0, checked_at=CHECKED)
    doc = json.loads(json.dumps(record.to_dict(), allow_nan=False))
    assert HealthRecord.from_dict(doc) == record
    assert doc["settings"]["breakdown_sessions"] == 10 and doc["state"] == "broken"
    with pytest.raises(DataValidationError, match="missing"):
        HealthRecord.from_dict({k: v for k, v in doc.items() if k != "metrics"})
    with pytest.raises(DataValidationError, match="state"):
        HealthRecord.from_dict(doc | {"state": "fine"})
    with pytest.raises(DataValidationError, match=r"reasons\[0\]"):
        HealthRecord.from_dict(doc | {"reasons": [{"criterion": "mood"}]})
    with pytest.raises(SchemaVersionError):
        HealthRecord.from_dict(doc | {"schema_version": 2})


def test_settings_defaults_and_environment() -> None:
    defaults = HealthSettings()
    assert defaults.breakdown_sessions == 10 and defaults.default_stop_band == 4.0
    assert defaults.max_loss is None and defaults.stale_broken_sessions is None
    env = {
        "TITAN_HEALTH_BREAKDOWN_SESSIONS": "12",
        "TITAN_HEALTH_MAX_LOSS": "2500",
        "TITAN_HEALTH_STALE_BROKEN_SESSIONS": "none",
        "TITAN_HEALTH_REVERSION_WARNING_RATIO": "",
    }
    settings = HealthSettings.from_env(env)
    assert settings == replace(defaults, breakdown_sessions=12, max_loss=2500.0)
    with pytest.raises(ParameterError, match="TITAN_HEALTH_BREAKDOWN_SESSIONS"):
        HealthSettings.from_env({"TITAN_HEALTH_BREAKDOWN_SESSIONS": "1.5"})
    with pytest.raises(ParameterError, match="TITAN_HEALTH_MAX_LOSS"):
        HealthSettings.from_env({"TITAN_HEALTH_MAX_LOSS": "lots"})
    with pytest.raises(ParameterError, match="max_loss"):
        HealthSettings(max_loss=-1.0)
    with pytest.raises(ParameterError, match="lookback_sessions"):
        HealthSettings(lookback_sessions=5)


def test_missing_prices_are_a_clear_error() -> None:
    phi = 0.85
    prices = legs(ar1_path(np.random.default_rng(9), 50, phi), 9)
    with pytest.raises(DataValidationError, match="prices for 'X' are missing"):
        check_health(fixed_model(phi), {"Y": prices["Y"]})
    with pytest.raises(DataValidationError, match="share no date up to 1999"):
        check_health(fixed_model(phi), prices, as_of="1999-01-01")


def test_the_store_keeps_every_record(any_store: str) -> None:
    store = open_store(any_store)
    phi = 0.85
    prices = legs(ar1_path(np.random.default_rng(10), 120, phi), 10)
    model = fixed_model(phi)
    dates = [d for d, _ in prices["Y"]]
    first = check_health(model, prices, as_of=dates[-2], checked_at=CHECKED)
    second = check_health(model, prices, checked_at=CHECKED + timedelta(days=1))
    assert latest_health(store, model.model_id) is None

    key = append_health(store, first)
    assert key.startswith(f"health/{model.model_id}/20230101T000000")
    assert append_health(store, first) == key  # a retried write stores it once
    append_health(store, second)
    assert health_history(store, model.model_id) == [first, second]
    assert latest_health(store, model.model_id) == second
    assert health_history(store, model.model_id, limit=1) == [second]

    changed = replace(first, state="broken")
    assert health_record_key(changed) == key
    with pytest.raises(ConflictError, match="different health record"):
        append_health(store, changed)
    assert health_history(store, model.model_id)[0] == first  # never overwritten

    store.write_bytes(key, b"{not json")
    with pytest.raises(DataValidationError, match=key):
        health_history(store, model.model_id)
