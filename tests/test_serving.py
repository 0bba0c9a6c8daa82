"""The serving core: held side, order planning, mark-to-market, evaluating served models."""

from __future__ import annotations

from pathlib import Path

import pytest

from titan_lib.core import evaluate, get_model, latest_prices
from titan_lib.core.execution.models import QUANTITY_TOLERANCE, OrderRequest, Position
from titan_lib.core.model_registry import Retirement
from titan_lib.core.serving import (
    evaluate_served,
    held_side,
    mark_to_market,
    open_pairs,
    pair_quantities,
    plan_order,
    pnl_by_model,
    signal_document,
    total_pnl,
)
from titan_lib.exceptions import NotFoundError
from titan_lib.stores import open_store

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, list[str]]:
    from fixtures.lambda_world import world_store

    return world_store(tmp_path_factory.mktemp("serving"))


def _tails(store, model):
    return {s: latest_prices(store, s) for s in model.symbols}


def test_the_held_side_is_the_sign_of_the_y_leg_beyond_the_tolerance(world) -> None:
    root, ids = world
    model = get_model(ids[0], str(root))
    residue = QUANTITY_TOLERANCE / 10
    assert held_side(model, {model.y: 12.5, model.x: -30.0}) == 1
    assert held_side(model, {model.y: -0.000001, model.x: 3.0}) == -1
    assert held_side(model, {model.y: residue, model.x: -30.0}) == 0
    assert held_side(model, {model.x: 5.0}) == 0
    positions = [
        Position(ids[0], model.y, residue, 10.0),
        Position(ids[0], model.x, -residue, -10.0),
        Position(ids[1], "XOM", 0.0, 5.0),
        Position(ids[1], "CVX", -2e-6, 1.0),
    ]
    assert open_pairs(positions) == [ids[1]]
    assert pair_quantities(positions, ids[1]) == {"XOM": 0.0, "CVX": -2e-6}


def test_an_order_is_planned_from_the_side_held(world) -> None:
    root, ids = world
    store = open_store(str(root))
    model = get_model(ids[0], store)
    tails = _tails(store, model)
    asked: list[str] = []
    retired = Retirement(model.model_id, "2026-01-02T00:00:00+00:00", "drifted")

    def retirement_of(model_id: str) -> Retirement:
        asked.append(model_id)
        return retired

    for held, side in [(25.0, 1), (-25.0, -1), (QUANTITY_TOLERANCE / 10, 0)]:
        request = OrderRequest(model_id=model.model_id, notional=20_000.0)
        plan = plan_order(model, tails, request, {model.y: held}, retirement_of)
        signal = evaluate(model, tails, position=side)
        assert plan.signal == signal_document(model, signal, retired)
        assert plan.signal["previous_position"] == side and plan.signal["status"] == "retired"
        y_close, x_close = tails[model.y].last_close, tails[model.x].last_close
        legs = model.leg_quantities(20_000.0, y_close, x_close, side=signal.position)
        assert plan.target_position == signal.position
        assert plan.target_quantities == {
            model.y: round(legs.y_quantity, 6) + 0.0,
            model.x: round(legs.x_quantity, 6) + 0.0,
        }
        assert plan.prices == {model.y: y_close, model.x: x_close}
        assert plan.price_dates == {s: tails[s].last_date for s in (model.y, model.x)}
    assert asked == [model.model_id] * 3
    explicit = OrderRequest(model_id=model.model_id, notional=20_000.0, target_position=-1)
    plan = plan_order(model, tails, explicit, {}, retirement_of)
    assert plan.signal is None and plan.target_position == -1 and len(asked) == 3
    assert plan.target_quantities[model.y] < 0 < plan.target_quantities[model.x]


def test_positions_are_marked_at_the_last_close() -> None:
    positions = [
        Position("m1", "KO", 100.0, -5_000.0),
        Position("m1", "PEP", -40.0, 6_600.0),
        Position("m2", "XOM", 0.0, 125.5),
        Position("m2", "CVX", 10.0, -1_500.0),
    ]
    closes = {"KO": 52.0, "PEP": 160.0, "XOM": 101.0}
    marks = mark_to_market(positions, closes.get)
    assert [m.market_value for m in marks] == [5_200.0, -6_400.0, 0.0, None]
    assert [m.pnl for m in marks] == [200.0, 200.0, 125.5, None]
    assert marks[0].to_dict() == {
        "model_id": "m1",
        "symbol": "KO",
        "quantity": 100.0,
        "cash": -5_000.0,
        "last_price": 52.0,
        "market_value": 5_200.0,
        "pnl": 200.0,
    }
    assert pnl_by_model(marks) == {"m1": 400.0, "m2": 125.5}
    assert total_pnl(marks) == 525.5

    def unknown(symbol: str) -> float:
        raise NotFoundError(f"no prices for symbol {symbol!r}")

    with pytest.raises(NotFoundError, match="KO"):
        mark_to_market(positions, unknown)


def test_every_served_model_is_evaluated_and_a_broken_one_is_reported(world, tmp_path) -> None:
    import shutil

    root, ids = world
    copy = tmp_path / "store"
    shutil.copytree(root, copy)
    store = open_store(str(copy))
    models = [get_model(i, store) for i in ids]
    broken = models[1]
    (copy / "prices" / "latest" / f"{broken.x}.json").unlink()

    def tail_of(symbol: str):
        return latest_prices(store, symbol)

    served = evaluate_served(models, tail_of, position_of=lambda m: -1)
    assert [s.model.model_id for s in served] == ids
    assert served[0].signal == evaluate(models[0], _tails(store, models[0]), position=-1)
    assert served[0].error is None and served[0].missing == ()
    assert served[1].signal is None and served[1].missing == (broken.x,)
    assert isinstance(served[1].error, NotFoundError)
    assert served[1].error_message == f"no prices for symbol {broken.x!r} in store {store.uri}"
    stateless = evaluate_served(models[:1], tail_of)
    assert stateless[0].signal == evaluate(models[0], _tails(store, models[0]))
    with pytest.raises(NotFoundError, match=broken.x):
        evaluate_served(models, tail_of, contain=())
