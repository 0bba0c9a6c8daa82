"""SignalModel JSON, content ids, leg quantities, and the model registry in the store."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from titan_lib.cli import main
from titan_lib.core import (
    FitSummary,
    MarkovRegimeModel,
    Provenance,
    RegimeGate,
    SignalModel,
    SignalRules,
    VolatilityRegimeModel,
    ZScoreSpec,
    evaluate,
    get_model,
    list_model_ids,
    list_models,
    publish,
    retire,
    retirement,
)
from titan_lib.core.zscore import EwmaState
from titan_lib.data import sample_prices
from titan_lib.exceptions import (
    DataValidationError,
    NotFoundError,
    ParameterError,
    SchemaVersionError,
)
from titan_lib.stores import open_store


def make_model(**changes) -> SignalModel:
    base = SignalModel(
        y="KO",
        x="PEP",
        beta=0.8643661909815926,
        alpha=-0.38880700613378105,
        zscore=ZScoreSpec.ewma(
            halflife=20.0,
            state=EwmaState(mean=0.0012, var=2.5e-4, count=503, as_of="2009-12-31"),
        ),
        rules=SignalRules(entry=2.0, exit=0.5, stop=4.0, time_stop_half_lives=3.0),
        fit=FitSummary(
            start="2008-01-02",
            end="2009-12-31",
            nobs=503,
            pvalue=0.012,
            half_life=14.2,
            spread_mean=1e-17,
            spread_std=0.021,
        ),
        provenance=Provenance(code_version="titan-lib 0.1.0", run_id="run-1"),
        gate=RegimeGate(
            MarkovRegimeModel(
                means=(0.0008, -0.0008),
                variances=(4.4e-5, 3.3e-4),
                transition=((0.986, 0.014), (0.03, 0.97)),
                initial=(0.68, 0.32),
            ),
            blocked=(1,),
            flatten=True,
            market_symbol="SP500",
        ),
    )
    return replace(base, **changes)


def test_json_round_trip_keeps_the_id() -> None:
    model = make_model()
    text = model.to_json()
    back = SignalModel.from_json(text)
    assert back == model
    assert back.model_id == model.model_id
    assert json.loads(text)["model_id"] == model.model_id
    assert json.loads(text)["schema_version"] == 1
    volatility = make_model(
        gate=RegimeGate(
            VolatilityRegimeModel(21, (0.15, 0.3), (0.5, 0.9)), blocked=(2,), source="spread"
        ),
        zscore=ZScoreSpec.rolling(60),
        rules=SignalRules(entry=1.5, exit=0.0),
    )
    assert SignalModel.from_json(volatility.to_json()).model_id == volatility.model_id
    assert volatility.model_id != model.model_id


def test_id_is_a_content_hash_of_what_is_served() -> None:
    model = make_model()
    later = make_model(
        provenance=Provenance(code_version="other", run_id="run-2", created_at="2030-01-01")
    )
    assert later.model_id == model.model_id  # provenance is not in the id
    assert make_model(rules=SignalRules(2.1, 0.5, 4.0, 3.0)).model_id != model.model_id
    assert make_model(beta=0.8643661909815927).model_id != model.model_id
    assert make_model(fit=replace(model.fit, pvalue=0.013)).model_id != model.model_id
    assert len(model.model_id) == 64
    assert make_model(alpha=-0.38880700613378105).model_id == model.model_id


def mutated(change) -> str:
    doc = json.loads(make_model().to_json())
    change(doc)
    return json.dumps(doc)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: d["rules"].update(entry="two"), r"rules\.entry must be a number"),
        (lambda d: d["legs"].pop("x"), r"legs\.x is missing"),
        (lambda d: d.update(extra=1), "unknown field"),
        (lambda d: d["zscore"].update(method="median"), r"zscore\.method must be one of"),
        (lambda d: d["rules"].update(exit=3.0), "exit < entry"),
        (lambda d: d["fit"].update(end="31/12/2009"), r"fit\.end must be an ISO date"),
        (lambda d: d["gate"]["model"].update(transition=[[0.5, 0.6], [0.1, 0.9]]), "sum to 1"),
        (lambda d: d["hedge"].update(beta=2.0), "does not match its content"),
    ],
)
def test_malformed_documents_get_clear_errors(change, match) -> None:
    with pytest.raises(DataValidationError, match=match):
        SignalModel.from_json(mutated(change))


def test_newer_schema_and_non_json_are_refused() -> None:
    with pytest.raises(SchemaVersionError, match=r"schema_version 2.*newer"):
        SignalModel.from_json(mutated(lambda d: d.update(schema_version=2)))
    with pytest.raises(DataValidationError, match="not valid JSON"):
        SignalModel.from_json("{not json")
    with pytest.raises(DataValidationError, match="JSON object"):
        SignalModel.from_json("[1, 2]")


def test_leg_quantities_conventions() -> None:
    model = make_model()
    legs = model.leg_quantities(10_000.0, y_price=60.0, x_price=170.0, side=1)
    assert abs(legs.y_notional) + abs(legs.x_notional) == pytest.approx(10_000.0)
    assert legs.x_notional == pytest.approx(-model.beta * legs.y_notional)
    assert legs.y_quantity * 60.0 == pytest.approx(legs.y_notional) and legs.y_quantity > 0
    short = model.leg_quantities(10_000.0, 60.0, 170.0, side=-1)
    assert short.y_quantity == pytest.approx(-legs.y_quantity)
    level = make_model(transform="level", zscore=ZScoreSpec.rolling(30), beta=0.35)
    shares = level.leg_quantities(10_000.0, 60.0, 170.0)
    assert shares.x_quantity == pytest.approx(-0.35 * shares.y_quantity)
    assert abs(shares.y_notional) + abs(shares.x_notional) == pytest.approx(10_000.0)
    with pytest.raises(ParameterError, match="prices must be > 0"):
        model.leg_quantities(1.0, 0.0, 1.0)


def test_signal_quantities_use_the_target_position() -> None:
    model = make_model(gate=None, zscore=ZScoreSpec.rolling(5))
    prices = sample_prices(["KO", "PEP"])
    tails = {
        s: [
            (d.isoformat(), c)
            for d, c in prices.filter(prices["symbol"] == s)
            .select("date", "close")
            .tail(40)
            .iter_rows()
        ]
        for s in ("KO", "PEP")
    }
    signal = evaluate(model, tails, position=1)
    assert signal.previous_position == 1
    legs = signal.leg_quantities(model, 5_000.0)
    if signal.position == 0:
        assert legs.y_quantity == 0.0 and legs.x_quantity == 0.0
    else:
        assert math.copysign(1.0, legs.y_quantity) == signal.position
    with pytest.raises(DataValidationError, match="'PEP' are missing"):
        evaluate(model, {"KO": tails["KO"]})


def test_registry_round_trip(any_store) -> None:
    store = open_store(any_store)
    model = make_model()
    other = make_model(rules=SignalRules(entry=2.5, exit=0.5))
    first = publish(model, any_store)
    assert first.created
    stored = store.read_bytes(first.key)
    again = publish(make_model(provenance=Provenance(code_version="x", run_id="run-9")), store)
    assert not again.created and again.model_id == model.model_id
    assert store.read_bytes(first.key) == stored  # publishing never overwrites
    publish(other, store)
    got = get_model(model.model_id, any_store)
    assert got == model and got.model_id == model.model_id
    assert got.provenance.run_id == "run-1"
    assert list_model_ids(store) == sorted([model.model_id, other.model_id])

    marker = retire(model.model_id, "regime broke down", store)
    assert retire(model.model_id, "again", store) == marker  # idempotent
    assert retirement(model.model_id, store).reason == "regime broke down"
    assert [m.model.model_id for m in list_models(store)] == [other.model_id]
    everything = list_models(store, include_retired=True)
    assert {(m.model.model_id, m.served) for m in everything} == {
        (model.model_id, False),
        (other.model_id, True),
    }
    assert get_model(model.model_id, store) == model  # retired stays readable
    with pytest.raises(NotFoundError):
        get_model("0" * 64, store)
    with pytest.raises(NotFoundError):
        retire("1" * 64, "", store)
    with pytest.raises(ParameterError, match="64 lowercase hex"):
        get_model("../etc/passwd", store)


def test_tampered_stored_model_is_refused(local_store) -> None:
    model = make_model()
    result = publish(model, local_store)
    store = open_store(local_store)
    doc = json.loads(store.read_bytes(result.key))
    doc["rules"]["entry"] = 1.0
    store.write_bytes(result.key, json.dumps(doc).encode())
    with pytest.raises(DataValidationError, match="does not match its content"):
        get_model(model.model_id, store)


def run_cli(args: list[str]) -> int:
    """Run ``titan`` in-process; return its exit code."""
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_cli_models(local_store, tmp_path, capsys) -> None:
    path = tmp_path / "model.json"
    path.write_text(make_model().to_json())
    publish_args = ["models", "publish", str(path), "--override", "fixture", "--store", local_store]
    assert run_cli(publish_args) == 0  # no gate evidence in the file: only under an override
    (model_id,) = list_model_ids(local_store)
    assert f"published: {model_id}" in capsys.readouterr().out
    model = get_model(model_id, local_store)
    assert run_cli(publish_args) == 0
    assert "already published" in capsys.readouterr().out
    assert run_cli(["models", "list", "--store", local_store]) == 0
    out = capsys.readouterr().out
    assert model.model_id[:16] in out and "served" in out
    assert run_cli(["models", "show", model.model_id, "--store", local_store]) == 0
    shown = capsys.readouterr().out
    assert json.loads(shown[: shown.rindex("}") + 1])["model_id"] == model.model_id
    assert (
        run_cli(["models", "retire", model.model_id, "--reason", "done", "--store", local_store])
        == 0
    )
    capsys.readouterr()
    assert run_cli(["models", "list", "--store", local_store]) == 0
    assert "no published models" in capsys.readouterr().out
    assert run_cli(["models", "list", "--all", "--store", local_store]) == 0
    assert "retired" in capsys.readouterr().out
    assert run_cli(["models", "show", "f" * 64, "--store", local_store]) == 1
    assert "no published model" in capsys.readouterr().err


def test_pair_rule_derives_from_signal_rules_with_one_validation() -> None:
    """The backtest's rule is the served rule with its time stop in bars; both reject the
    same thresholds with the same message (one check)."""
    from titan_lib.backtest.rules import PairRule
    from titan_lib.core.state_machine import check_thresholds

    served = SignalRules(entry=2.0, exit=0.5, stop=4.0, time_stop_half_lives=3.0)
    rule = PairRule.from_signal_rules(served, ZScoreSpec.rolling(40), half_life=12.5)
    assert (rule.entry, rule.exit, rule.stop, rule.max_hold) == (2.0, 0.5, 4.0, 37.5)
    assert rule.zscore == ZScoreSpec.rolling(40)
    untimed = PairRule.from_signal_rules(SignalRules(1.5, 0.0), ZScoreSpec.rolling(20))
    assert untimed.max_hold == math.inf and untimed.stop == math.inf
    with pytest.raises(ParameterError, match="half-life"):
        PairRule.from_signal_rules(served, ZScoreSpec.rolling(40), half_life=None)
    for entry, exit_, stop in [
        (1.0, 1.5, 4.0), (2.0, -0.1, 4.0), (2.0, 0.5, 2.0), (0.0, 0.0, 4.0),
        (math.nan, 0.5, 4.0), (math.inf, 0.5, math.inf), (2.0, 0.5, math.nan),
    ]:  # fmt: skip
        with pytest.raises(ParameterError) as served_error:
            SignalRules(entry=entry, exit=exit_, stop=stop)
        with pytest.raises(ParameterError) as backtest_error:
            PairRule(entry=entry, exit=exit_, stop=stop)
        with pytest.raises(ParameterError) as shared:
            check_thresholds(entry, exit_, stop)
        assert served_error.value.message == backtest_error.value.message
        assert backtest_error.value.message == shared.value.message
