"""Watching served models end to end: on the bundled sample with prices appended that
break one model's spread, `titan models monitor` keeps a health record per model, retires
the broken model with the named reason (and announces it), leaves the healthy model alone,
and the API then refuses orders that open exposure on it while closing orders pass (real
HTTP to the local server of `titan lambdas local`). The Lambda's scheduled handler does
the same on S3 + DynamoDB + SNS (moto server); the flatten policy closes a broken model's
position once; a per-model loss limit retires a losing model."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fixtures.lambda_world import (
    LAMBDAS,
    copy_store_to,
    http_call,
    lambda_env,
    load_app,
    serve,
    token,
    world_store,
)
from typer.testing import CliRunner

from titan_lib.core.execution.ledger_sqlite import SQLiteLedger
from titan_lib.core.model_health_store import health_history
from titan_lib.core.model_registry import get_model, retirement
from titan_lib.core.serving.monitoring import MonitorSettings, flatten_key, monitor_models
from titan_lib.core.serving.orders import store_execution
from titan_lib.stores import open_store

REPO = Path(__file__).resolve().parents[1]
BREAK_SESSIONS = 14
"""Sessions appended after the sample's last day (2022-12-28)."""
EXPECTED_REASON = "breakdown: |z| > 4.0 for 11 sessions"
"""KO runs away from PEP at an accelerating pace: |z| > 4 from the 4th appended session."""
HEALTH_ENV = {"TITAN_HEALTH_STALE_WARNING_SESSIONS": "100000"}
"""The sample ends in 2022: staleness against today's calendar is relaxed, as for orders."""


def _sessions_after(day: date, n: int) -> list[str]:
    from titan_lib.core.market_calendar import MarketCalendar

    calendar = MarketCalendar.load()
    out, d = [], day
    while len(out) < n:
        d += timedelta(days=1)
        if calendar.is_session(d):
            out.append(d.isoformat())
    return out


def append_breaking_prices(store: str) -> None:
    """Append sessions where KO's log price grows 4% a day, 15% faster each day, PEP flat;
    XOM and CVX keep their last close."""
    import polars as pl

    from titan_lib.core.prices import latest_prices
    from titan_lib.data import ingest_frame

    opened = open_store(store)
    last = {s: latest_prices(opened, s, n=1).last_close for s in ("KO", "PEP", "XOM", "CVX")}
    rows = []
    for i, day in enumerate(_sessions_after(date(2022, 12, 28), BREAK_SESSIONS), start=1):
        run = 0.04 * (1.15**i - 1.0) / 0.15
        rows.append((date.fromisoformat(day), "KO", last["KO"] * math.exp(run)))
        for symbol in ("PEP", "XOM", "CVX"):
            rows.append((date.fromisoformat(day), symbol, last[symbol]))
    ingest_frame(pl.DataFrame(rows, schema=["date", "symbol", "close"], orient="row"), store)


def _ids_by_pair(store: str, ids: list[str]) -> tuple[str, str]:
    """(KO/PEP model id, XOM/CVX model id)."""
    by_y = {get_model(i, store).y: i for i in ids}
    return by_y["KO"], by_y["XOM"]


def _auth(sub: str = "trader") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(sub=sub)}"}


def _order(url: str, model_id: str, target: int, notional: float, key: str):
    headers = {**_auth(), "Idempotency-Key": key}
    body = {"model_id": model_id, "notional": notional, "target_position": target}
    return http_call(f"{url}/orders", "POST", body, headers)


@pytest.fixture()
def broken_world(tmp_path):
    """(store path, ledger path, KO/PEP id, XOM/CVX id) with the break appended."""
    store, ids = world_store(tmp_path)
    append_breaking_prices(str(store))
    broken, healthy = _ids_by_pair(str(store), ids)
    return str(store), str(tmp_path / "ledger.sqlite"), broken, healthy


def test_monitor_retires_the_broken_model_and_orders_become_close_only(
    broken_world, monkeypatch
) -> None:
    store, ledger, broken, healthy = broken_world
    for key, value in HEALTH_ENV.items():
        monkeypatch.setenv(key, value)
    from titan_lib.cli import app

    env = lambda_env(store, ledger, TITAN_CACHE_SECONDS="0", **HEALTH_ENV)
    with serve(env) as url:
        for model_id, key in ((broken, "open-broken-001"), (healthy, "open-healthy-01")):
            status, _, opened = _order(url, model_id, 1, 10_000, key)
            assert status == 201 and opened["status"] == "filled", opened

        runner = CliRunner()
        dry = runner.invoke(app, ["models", "monitor", "--store", store, "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert EXPECTED_REASON in dry.output and "dry run" in dry.output
        assert retirement(broken, store) is None and health_history(open_store(store), broken) == []

        result = runner.invoke(app, ["models", "monitor", "--store", store, "--ledger", ledger])
        assert result.exit_code == 0, result.output
        assert EXPECTED_REASON in result.output and "1 healthy, 1 broken" in result.output
        marker = retirement(broken, store)
        assert marker is not None and marker.reason == EXPECTED_REASON
        assert retirement(healthy, store) is None
        [record] = health_history(open_store(store), broken)
        assert record.state == "broken" and record.metrics["beyond_stop_sessions"] == 11
        assert record.metrics["pnl"] is not None  # P&L from the ledger's positions
        [fine] = health_history(open_store(store), healthy)
        assert fine.state == "healthy" and fine.reason == ""

        before = SQLiteLedger(ledger).positions()
        for target, notional, key in ((1, 20_000, "more-broken-01"), (-1, 10_000, "flip-broken-1")):
            status, _, body = _order(url, broken, target, notional, key)
            assert status == 422 and body["error"]["code"] == "model_retired", body
            assert body["error"]["details"]["reason"] == EXPECTED_REASON
        assert SQLiteLedger(ledger).positions() == before
        status, _, closed = _order(url, broken, 0, 10_000, "close-broken-01")
        assert status == 201 and closed["status"] == "filled", closed
        status, _, more = _order(url, healthy, 1, 12_000, "more-healthy-01")
        assert status == 201 and more["status"] == "filled", more

        status, _, listed = http_call(f"{url}/models", headers=_auth())
        assert status == 200
        [summary] = listed["models"]
        assert summary["model_id"] == healthy and summary["health"]["state"] == "healthy"

        again = runner.invoke(app, ["models", "monitor", "--store", store, "--json"])
        assert again.exit_code == 0, again.output
        report = json.loads(again.output)
        assert [m["model_id"] for m in report["models"]] == [healthy]
        assert len(health_history(open_store(store), healthy)) == 2  # history kept

        shown = runner.invoke(app, ["models", "show", broken, "--store", store])
        assert shown.exit_code == 0, shown.output
        assert f"health: broken as of {record.as_of}" in shown.output
        assert EXPECTED_REASON in shown.output

        from titan_lib.dashboards.live_data import read_snapshot

        snapshot = read_snapshot(open_store(store), ledger)
        assert snapshot.signals["health"].to_list() == ["healthy"]
        assert snapshot.health["state"].to_list() == ["healthy", "healthy"]
        assert snapshot.health["model"].to_list() == [healthy[:12]] * 2


def test_flatten_policy_closes_a_broken_model_once_and_the_loss_limit_retires(
    broken_world,
) -> None:
    store, ledger_path, broken, healthy = broken_world
    opened = open_store(store)
    ledger = SQLiteLedger(ledger_path)
    from titan_lib.core.execution.models import OrderRequest
    from titan_lib.core.execution.risk import RiskLimits

    limits = RiskLimits(market_hours="always", max_price_age_sessions=100_000)
    execution = store_execution(opened, ledger, limits=limits)
    for model_id in (broken, healthy):
        outcome = execution.place_order(
            "trader", f"open-{model_id[:8]}", OrderRequest(model_id, 10_000, 1)
        )
        assert outcome.order.status == "filled"
    now = datetime(2023, 1, 20, 22, 0, tzinfo=UTC)
    settings = MonitorSettings(
        health=MonitorSettings.from_env(HEALTH_ENV).health,
        policy="flatten",
        max_loss={healthy: 0.01},  # the paper broker's slippage already costs more
    )
    report = monitor_models(opened, ledger, settings=settings, execution=execution, now=now)
    checks = {c.model_id: c for c in report.checks}
    assert set(report.retired) == {broken, healthy}
    assert checks[broken].reason == EXPECTED_REASON
    assert checks[healthy].reason.startswith("loss_limit: P&L -")
    assert retirement(healthy, store).reason == checks[healthy].reason
    for model_id in (broken, healthy):
        flatten = checks[model_id].flatten
        assert flatten["status"] == "filled" and flatten["idempotency_key"] == flatten_key(
            model_id, now
        )
    assert all(abs(p.quantity) < 1e-9 for p in ledger.positions())
    fills = len(ledger.list_fills())
    # a re-run never closes twice: retired models are no longer checked or flattened
    rerun = monitor_models(opened, ledger, settings=settings, execution=execution, now=now)
    assert rerun.checks == () and len(ledger.list_fills()) == fills
    replay = execution.place_order(
        "titan-monitor", flatten_key(broken, now), OrderRequest(broken, 1.0, 0)
    )
    assert not replay.created and len(ledger.list_fills()) == fills


def test_scheduled_handler_does_the_same_on_s3_dynamodb_and_sns(
    broken_world, s3_bucket, monkeypatch
) -> None:
    import boto3
    from chalice.test import Client

    from titan_lib.core.execution.ledger_dynamodb import DynamoDBLedger

    local, _, broken, healthy = broken_world
    store = f"s3://{s3_bucket}/store"
    copy_store_to(Path(local), store)
    table = f"monitor-{uuid.uuid4().hex[:10]}"
    DynamoDBLedger.create_table(table)
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name=f"events-{uuid.uuid4().hex[:8]}")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"events-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    env = lambda_env(
        store,
        f"dynamodb://{table}",
        TITAN_MODEL_EVENTS_TOPIC_ARN=topic,
        TITAN_CACHE_SECONDS="0",
        **HEALTH_ENV,
    )
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    module = load_app()
    from chalicelib.runtime import reset_runtime

    reset_runtime()
    try:
        with Client(module.app, project_dir=str(LAMBDAS)) as client:

            def order(model_id: str, target: int, key: str):
                response = client.http.post(
                    "/orders",
                    headers={**_auth(), "Idempotency-Key": key, "Content-Type": "application/json"},
                    body=json.dumps(
                        {"model_id": model_id, "notional": 10_000, "target_position": target}
                    ),
                )
                return response.status_code, json.loads(response.body)

            assert order(broken, 1, "aws-open-broken-1")[0] == 201
            result = client.lambda_.invoke(
                "refresh_signals",
                client.events.generate_cw_event(
                    source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
                ),
            )
            assert result.payload["retired"] == [broken], result.payload
            assert result.payload["health"] == {
                "healthy": 1,
                "warning": 0,
                "broken": 1,
                "error": 0,
            }
            assert result.payload["signals"] == 1  # the snapshot no longer serves it
            marker = retirement(broken, store)
            assert marker is not None and marker.reason == EXPECTED_REASON
            assert retirement(healthy, store) is None
            s3 = open_store(store)
            assert [r.state for r in health_history(s3, broken)] == ["broken"]
            assert [r.state for r in health_history(s3, healthy)] == ["healthy"]
            messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2).get("Messages", [])
            assert [json.loads(m["Body"]) for m in messages] == [
                {"event": "retired", "model_id": broken}
            ]
            status, body = order(broken, -1, "aws-flip-broken-1")
            assert status == 422 and body["error"]["code"] == "model_retired", body
            status, body = order(broken, 0, "aws-close-broken-1")
            assert status == 201 and body["status"] == "filled", body
            status, body = order(healthy, 1, "aws-open-healthy-1")
            assert status == 201 and body["status"] == "filled", body
            models = json.loads(client.http.get("/models", headers=_auth()).body)["models"]
            assert [(m["model_id"], m["health"]["state"]) for m in models] == [(healthy, "healthy")]
    finally:
        reset_runtime()


def test_settings_from_the_environment_and_one_failing_model_does_not_stop_the_run(
    broken_world,
) -> None:
    from titan_lib.core.prices import price_tail_key
    from titan_lib.exceptions import ParameterError

    store, _, broken, healthy = broken_world
    settings = MonitorSettings.from_env(
        {
            "TITAN_BROKEN_MODEL_POLICY": "flatten",
            "TITAN_MODEL_MAX_LOSS": f"{healthy}=250, {broken}=1e3",
            "TITAN_HEALTH_BREAKDOWN_SESSIONS": "12",
        }
    )
    assert settings.policy == "flatten" and settings.max_loss == {healthy: 250.0, broken: 1e3}
    assert settings.for_model(healthy).max_loss == 250.0
    assert settings.for_model("f" * 64).max_loss is None
    assert settings.health.breakdown_sessions == 12
    for bad, variable in (
        ({"TITAN_BROKEN_MODEL_POLICY": "sell-everything"}, "TITAN_BROKEN_MODEL_POLICY"),
        ({"TITAN_MODEL_MAX_LOSS": f"{healthy}=lots"}, "TITAN_MODEL_MAX_LOSS"),
        ({"TITAN_MODEL_MAX_LOSS": f"{healthy}=-5"}, "loss limit"),
    ):
        with pytest.raises(ParameterError, match=variable):
            MonitorSettings.from_env(bad)

    opened = open_store(store)
    opened.delete(price_tail_key("CVX"))
    now = datetime(2023, 1, 20, 22, 0, tzinfo=UTC)
    report = monitor_models(opened, None, settings=settings, dry_run=True, now=now)
    checks = {c.model_id: c for c in report.checks}
    assert checks[healthy].state == "error" and "CVX" in checks[healthy].error
    # 12 sessions are now needed for a breakdown: the 11 seen are a warning
    assert checks[broken].state == "warning"
    assert report.counts == {"healthy": 0, "warning": 1, "broken": 0, "error": 1}
    assert report.retired == [] and health_history(opened, broken) == []
