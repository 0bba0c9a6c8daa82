"""Brokers: the paper broker over the store, the Alpaca adapter against a local fake."""

from __future__ import annotations

import pytest
from fixtures.lambda_fake_alpaca import KEY_ID, SECRET_KEY, FakeAlpaca

from titan_lib.core.execution.alpaca import AlpacaBroker, AlpacaSettings
from titan_lib.core.execution.broker import BrokerRejectedError, BrokerUnavailableError
from titan_lib.core.execution.models import OrderLeg
from titan_lib.core.execution.paper import PaperBroker
from titan_lib.core.prices import latest_prices
from titan_lib.exceptions import ParameterError
from titan_lib.stores import open_store

LEGS = (OrderLeg("KO", 10.0), OrderLeg("PEP", -4.0))


@pytest.fixture(scope="module")
def price_store(tmp_path_factory) -> str:
    from fixtures.lambda_world import build_price_store

    root = tmp_path_factory.mktemp("prices") / "store"
    build_price_store(root)
    return str(root)


def test_paper_fills_at_last_price_with_adverse_slippage(price_store: str) -> None:
    store = open_store(price_store)
    broker = PaperBroker(store, slippage_bps=10)
    execution = broker.submit("titan-abc", LEGS)
    ko, pep = latest_prices(store, "KO").last_close, latest_prices(store, "PEP").last_close
    assert execution.complete
    assert [leg.symbol for leg in execution.legs] == ["KO", "PEP"]
    assert execution.legs[0].price == pytest.approx(ko * 1.001)
    assert execution.legs[1].price == pytest.approx(pep * 0.999)
    assert [leg.quantity for leg in execution.legs] == [10.0, -4.0]


def test_paper_deduplicates_on_client_order_id(price_store: str) -> None:
    store = open_store(price_store)
    first = PaperBroker(store, slippage_bps=5).submit("titan-dup", LEGS)
    second = PaperBroker(store, slippage_bps=50).submit("titan-dup", LEGS)
    assert second == first
    assert PaperBroker(store).lookup("titan-dup", LEGS) == first
    assert PaperBroker(store).lookup("titan-never", LEGS) is None
    with pytest.raises(ParameterError, match="slippage"):
        PaperBroker(store, slippage_bps=-1)


@pytest.fixture()
def fake() -> FakeAlpaca:
    server = FakeAlpaca({"KO": 61.5, "PEP": 172.25}, polls_before_fill=2)
    yield server
    server.close()


def _broker(fake: FakeAlpaca, **overrides: float) -> AlpacaBroker:
    settings = AlpacaSettings(
        key_id=KEY_ID,
        secret_key=SECRET_KEY,
        base_url=fake.url,
        timeout_seconds=overrides.get("timeout", 5.0),
        fill_timeout_seconds=overrides.get("fill_timeout", 5.0),
        poll_seconds=0.01,
    )
    return AlpacaBroker(settings)


def test_alpaca_places_market_orders_and_waits_for_fills(fake: FakeAlpaca) -> None:
    execution = _broker(fake).submit("titan-x1", LEGS)
    assert execution.complete
    assert [(leg.symbol, leg.quantity, leg.price) for leg in execution.legs] == [
        ("KO", 10.0, 61.5),
        ("PEP", -4.0, 172.25),
    ]
    assert set(fake.orders) == {"titan-x1-0", "titan-x1-1"}
    assert fake.orders["titan-x1-1"]["side"] == "sell" and fake.orders["titan-x1-1"]["qty"] == "4"
    assert all(count >= 2 for count in fake.polls.values())


def test_alpaca_resubmission_picks_up_the_existing_order(fake: FakeAlpaca) -> None:
    broker = _broker(fake)
    first = broker.submit("titan-x2", LEGS)
    again = broker.submit("titan-x2", LEGS)  # 422 duplicate -> lookup by client id
    assert again.legs == first.legs
    assert len(fake.orders) == 2 and fake.posts == 4
    assert broker.lookup("titan-x2", LEGS) == first
    assert broker.lookup("titan-none", LEGS) is None


def test_alpaca_4xx_is_a_definitive_rejection(fake: FakeAlpaca) -> None:
    fake.mode = "reject"
    with pytest.raises(BrokerRejectedError, match=r"403.*insufficient buying power"):
        _broker(fake).submit("titan-x3", LEGS)
    bad_key = AlpacaBroker(AlpacaSettings(key_id="wrong", secret_key="x", base_url=fake.url))
    with pytest.raises(BrokerRejectedError, match="401"):
        bad_key.submit("titan-x4", LEGS)


def test_alpaca_5xx_and_timeouts_leave_the_outcome_unknown(fake: FakeAlpaca) -> None:
    fake.mode = "error"
    with pytest.raises(BrokerUnavailableError, match="500"):
        _broker(fake).submit("titan-x5", LEGS)
    fake.mode = "slow"
    with pytest.raises(BrokerUnavailableError, match=r"timed out|TimeoutError"):
        _broker(fake, timeout=0.3).submit("titan-x6", LEGS)
    fake.mode = "ok"
    fake.polls_before_fill = 10**6
    with pytest.raises(BrokerUnavailableError, match="not filled within"):
        _broker(fake, fill_timeout=0.2).submit("titan-x7", LEGS[:1])


def test_alpaca_unreachable_is_unavailable() -> None:
    from conftest import free_port

    settings = AlpacaSettings(
        key_id=KEY_ID,
        secret_key=SECRET_KEY,
        base_url=f"http://127.0.0.1:{free_port()}",
        timeout_seconds=1,
    )
    with pytest.raises(BrokerUnavailableError):
        AlpacaBroker(settings).submit("titan-x8", LEGS)


def test_alpaca_settings_from_env_and_ssm(moto_endpoint: str) -> None:
    import boto3

    boto3.client("ssm").put_parameter(
        Name="/titan/test/alpaca-secret", Value=SECRET_KEY, Type="SecureString", Overwrite=True
    )
    settings = AlpacaSettings.from_env(
        {
            "TITAN_ALPACA_KEY_ID": KEY_ID,
            "TITAN_ALPACA_SECRET_KEY_SSM": "/titan/test/alpaca-secret",
            "TITAN_ALPACA_MODE": "live",
        }
    )
    assert settings.secret_key == SECRET_KEY and settings.base_url == "https://api.alpaca.markets"
    assert SECRET_KEY not in repr(settings)
    with pytest.raises(ParameterError, match="TITAN_ALPACA_KEY_ID"):
        AlpacaSettings.from_env({})
