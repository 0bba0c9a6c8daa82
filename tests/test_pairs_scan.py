"""The scan end to end: store round trip (local and S3), ground truth, Dask, CLI."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from fixtures.cli_runs import run_titan as run_cli

from titan_lib.data import ingest_frame
from titan_lib.data.synthetic import make_universe
from titan_lib.exceptions import DataValidationError, NotFoundError, ParameterError
from titan_lib.pairs import (
    benjamini_hochberg,
    engle_granger,
    engle_granger_batch,
    list_scans,
    load_scan,
    scan,
)
from titan_lib.stores import open_store, read_json


def test_scan_finds_planted_pairs_and_writes_the_store(
    any_store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    uni = make_universe(30, 2520, 4, seed=21, phi=(0.85, 0.95))
    ingest_frame(uni.prices, store=any_store)
    result = scan(store=any_store)
    table = result.pairs
    assert table.height == 30 * 29 // 2
    assert table["rank"].to_list() == list(range(1, table.height + 1))
    tradable = table.filter(pl.col("tradable"))
    assert tradable["rank"].to_list() == list(range(1, tradable.height + 1))  # tradable first
    assert tradable["qvalue"].to_list() == sorted(tradable["qvalue"].to_list())
    assert (table.filter(~pl.col("tradable"))["hedge_ratio"] <= 0).all()
    assert table["pvalue"].to_list() == [
        max(a, b) for a, b in zip(table["pvalue_yx"], table["pvalue_xy"], strict=True)
    ]
    assert set(table["direction"]) == {"symmetric"}
    for pair in uni.pairs:
        row = table.filter(pl.col("y") == pair.y, pl.col("x") == pair.x).row(0, named=True)
        assert row["qvalue"] < 0.05, row
        assert row["hedge_ratio"] == pytest.approx(pair.beta, rel=0.05)
        assert row["half_life"] == pytest.approx(pair.half_life, rel=0.35)
        assert row["hurst"] < 0.45 and row["crossings"] > 50
    found = result.significant(0.05)
    planted = {(p.y, p.x) for p in uni.pairs}
    false = [k for k in zip(found["y"], found["x"], strict=True) if k not in planted]
    assert len(false) <= 0.05 * found.height + 1
    err = capsys.readouterr().err
    assert "pairs: 100%" in err  # the progress bar

    # a row equals the single-pair test on log prices
    top = table.row(0, named=True)
    wide = uni.wide()
    single = engle_granger(np.log(wide[top["y"]].to_numpy()), np.log(wide[top["x"]].to_numpy()))
    assert top["tstat"] == pytest.approx(single.tstat, abs=1e-10)

    store = open_store(any_store)
    meta = read_json(store, f"scans/{result.scan_id}/scan.json")
    assert meta["counts"]["tested"] == table.height
    assert meta["universe"] == list(uni.symbols)
    assert meta["parameters"]["trend"] == "c"
    assert meta["parameters"]["direction"] == "symmetric"
    assert meta["pvalue_rule"].startswith("pvalue = max(pvalue_yx, pvalue_xy)")
    assert meta["fdr"]["n_tests"] == meta["counts"]["universe_pairs"] == 435
    assert meta["counts"]["tradable"] == tradable.height
    loaded = load_scan(result.scan_id, any_store)
    assert loaded.pairs.equals(table) and loaded.meta == result.meta
    listed = list_scans(any_store)
    assert listed["scan_id"].to_list() == [result.scan_id]
    assert listed["direction"].to_list() == ["symmetric"]
    assert listed["q_below_0.05"][0] == found.height


def test_independent_walks_are_rejected_near_the_nominal_rate() -> None:
    """600 disjoint pairs of independent random walks (no common factor): the null holds."""
    uni = make_universe(1200, 1000, 0, seed=22, market_sigma=0.0)
    pairs = [(uni.symbols[k], uni.symbols[k + 1]) for k in range(0, 1200, 2)]
    table = engle_granger_batch(uni.prices, pairs=pairs, price_transform="log")
    assert table["reason"].null_count() == 600
    p = np.sort(table["pvalue"].to_numpy())
    for level, tolerance in ((0.05, 0.025), (0.10, 0.035)):  # about 2.8 binomial sd
        assert abs(float(np.mean(p < level)) - level) <= tolerance
    uniform = np.arange(1, p.size + 1) / p.size
    assert np.max(np.abs(uniform - p)) < 0.066  # Kolmogorov-Smirnov, 1 % level


def test_scan_on_a_dask_cluster_equals_the_local_run(tmp_path: object) -> None:
    uni = make_universe(24, 800, 3, seed=23)
    prices = uni.prices.filter(
        ~((pl.col("symbol") == "S0007") & (pl.col("date").dt.day() == 3))  # per-pair path
    )
    store = str(tmp_path) + "/store"  # type: ignore[operator]
    ingest_frame(prices, store=store)
    settings = dict(store=store, chunk_size=8, progress=False, write=False)
    local = scan(**settings)  # type: ignore[arg-type]
    on_cluster = scan(scheduler="local", **settings)  # type: ignore[arg-type]
    assert local.pairs.height == 24 * 23 // 2
    assert local.pairs["pvalue_xy"].null_count() == 0
    assert on_cluster.pairs.equals(local.pairs)
    assert local.pairs.filter(pl.col("y") == "S0007")["nobs"].max() < 800


def test_scan_on_a_running_scheduler(tmp_path: object) -> None:
    from dask.distributed import LocalCluster

    uni = make_universe(10, 500, 1, seed=24)
    store = str(tmp_path) + "/store"  # type: ignore[operator]
    ingest_frame(uni.prices, store=store)
    local = scan(store=store, chunk_size=4, progress=False, write=False)
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        remote = scan(
            store=store, chunk_size=4, progress=False, write=False,
            scheduler=cluster.scheduler_address,
        )  # fmt: skip
    assert remote.pairs.equals(local.pairs)


def test_prescreen_limits_the_pairs_tested(tmp_path: object) -> None:
    uni = make_universe(20, 1000, 2, seed=25, phi=(0.85, 0.9))
    store = str(tmp_path) + "/store"  # type: ignore[operator]
    ingest_frame(uni.prices, store=store)
    result = scan(store=store, prescreen="correlation", top_k=2, progress=False)
    assert 20 <= result.pairs.height <= 40
    assert "correlation" in result.pairs.columns
    assert result.pairs["correlation"].null_count() == 0
    tested = set(zip(result.pairs["y"], result.pairs["x"], strict=True))
    assert {(p.y, p.x) for p in uni.pairs} <= tested  # planted legs are each other's best
    # the q-values count every pair of the universe, the screened-out ones as p = 1
    assert result.meta["fdr"]["n_tests"] == 20 * 19 // 2
    p = result.pairs["pvalue"].to_numpy()
    padded = np.concatenate([p, np.ones(190 - p.size)])
    np.testing.assert_allclose(
        result.pairs["qvalue"].to_numpy(), benjamini_hochberg(padded)[: p.size], rtol=1e-12
    )
    dist = scan(store=store, prescreen="distance", top_k=3, progress=False, write=False)
    assert dist.pairs["distance"].null_count() == 0


def test_scan_bad_input(tmp_path: object) -> None:
    uni = make_universe(6, 300, 1, seed=26)
    flat = uni.prices.filter(pl.col("symbol") == "S0005").with_columns(
        pl.lit("FLAT").alias("symbol"), pl.lit(7.0).alias("close")
    )
    store = str(tmp_path) + "/store"  # type: ignore[operator]
    ingest_frame(pl.concat([uni.prices, flat]), store=store)
    with pytest.raises(NotFoundError, match="NOPE"):
        scan(["S0000", "NOPE"], store=store, progress=False)
    with pytest.raises(DataValidationError, match="too short"):
        scan(store=store, start="2010-06-01", end="2010-06-30", progress=False)
    with pytest.raises(ParameterError, match="at least two"):
        scan(["S0000"], store=store, progress=False)
    with pytest.raises(ParameterError, match="prescreen"):
        scan(store=store, prescreen="cluster", progress=False)  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="scheduler"):
        scan(store=store, scheduler="tcp://127.0.0.1:9", progress=False, write=False)
    with pytest.raises(NotFoundError, match="no scan 'missing'"):
        load_scan("missing", store)
    result = scan(store=store, progress=False, write=False, min_obs=100)
    flat_rows = result.pairs.filter((pl.col("x") == "FLAT") | (pl.col("y") == "FLAT"))
    assert flat_rows.height == 6
    assert all("constant" in r for r in flat_rows["reason"].to_list())
    assert flat_rows["rank"].min() > result.pairs.height - 6  # untested pairs rank last
    assert flat_rows["qvalue"].null_count() == 6


def test_cli_scan_list_show(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    uni = make_universe(8, 600, 1, seed=27, phi=0.9)
    store = str(tmp_path) + "/store"  # type: ignore[operator]
    ingest_frame(uni.prices, store=store)
    code, out, err = run_cli(
        ["pairs", "scan", "--store", store, "--show", "5", "--trend", "ct"], capsys
    )
    assert code == 0, err
    assert "8 symbols, 28 pairs tested" in out
    scan_id = out.split()[1].rstrip(":")
    first = out.splitlines()[2].split()
    assert first[1:3] == [uni.pairs[0].y, uni.pairs[0].x]
    code, out, _ = run_cli(["pairs", "list", "--store", store], capsys)
    assert code == 0 and scan_id in out
    code, out, _ = run_cli(["pairs", "show", scan_id, "--store", store, "--top", "3"], capsys)
    assert code == 0 and "trend=ct" in out and "direction=symmetric" in out
    assert len(out.splitlines()) == 6
    assert out.splitlines()[-1].startswith("pvalue = max(pvalue_yx, pvalue_xy)")
    assert "over all 28 pairs of the universe" in out
    code, _, err = run_cli(["pairs", "show", "nope", "--store", store], capsys)
    assert code == 1 and err.startswith("error: no scan 'nope'")
    code, _, err = run_cli(["pairs", "scan", "S0000", "NOPE", "--store", store], capsys)
    assert code == 1 and "NOPE" in err and "Traceback" not in err
    code, _, err = run_cli(["pairs", "scan", "--store", store, "--trend", "n"], capsys)
    assert code == 2 and "trend" in err


def test_a_scan_ignores_prices_after_its_window(tmp_path: object) -> None:
    """Walk-forward safety: changing prices after ``end`` leaves the scan unchanged."""
    uni = make_universe(12, 900, 2, seed=28)
    cut = sorted(uni.prices["date"].unique().to_list())[600]
    rng = np.random.default_rng(1)
    shocked = uni.prices.with_columns(
        pl.when(pl.col("date") > cut)
        .then(pl.col("close") * np.exp(rng.normal(0, 0.2, uni.prices.height)))
        .otherwise(pl.col("close"))
        .alias("close")
    )
    base, moved = str(tmp_path) + "/a", str(tmp_path) + "/b"  # type: ignore[operator]
    ingest_frame(uni.prices, store=base)
    ingest_frame(shocked, store=moved)
    before = scan(end=cut, store=base, progress=False, write=False)
    after = scan(end=cut, store=moved, progress=False, write=False)
    assert before.pairs.equals(after.pairs)
    assert before.meta["last_date"] == str(cut)
    full = scan(store=moved, progress=False, write=False)
    assert not full.pairs.equals(after.pairs)


def test_half_life_of_planted_pairs_in_a_long_sample(tmp_path: object) -> None:
    """50,000 days: the scan's half-life of each planted spread is within 10 % of the truth."""
    uni = make_universe(6, 50_000, 3, seed=29, phi=(0.85, 0.95))
    store = str(tmp_path) + "/store"  # type: ignore[operator]
    ingest_frame(uni.prices, store=store)
    table = scan(store=store, progress=False, write=False).pairs
    for pair in uni.pairs:
        row = table.filter(pl.col("y") == pair.y, pl.col("x") == pair.x).row(0, named=True)
        assert abs(row["half_life"] - pair.half_life) / pair.half_life < 0.10, (row, pair)
        assert row["hedge_ratio"] == pytest.approx(pair.beta, abs=0.01)


def test_scan_settings_are_validated_once_and_recorded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import asdict

    from titan_lib.data import ingest_frame
    from titan_lib.data.synthetic import make_universe
    from titan_lib.pairs import ScanSettings, run_scan, scan

    for bad in (
        {"direction": "x_on_y"},
        {"prescreen": "cosine"},
        {"chunk_size": 1},
        {"statistics_qvalue": 1.5},
        {"trend": "quadratic"},
    ):
        with pytest.raises(ParameterError):
            ScanSettings(**bad)  # type: ignore[arg-type]
    universe = make_universe(6, 400, 1, seed=7)
    store = str(tmp_path / "store")
    ingest_frame(universe.prices, store=store)
    settings = ScanSettings(min_obs=200, direction="y_on_x")
    by_settings = run_scan(None, None, None, store, settings=settings, progress=False)
    by_keywords = scan(store=store, min_obs=200, direction="y_on_x", progress=False)
    assert by_settings.pairs.drop("direction").equals(by_keywords.pairs.drop("direction"))
    recorded = by_settings.meta["parameters"]
    assert {k: recorded[k] for k in asdict(settings)} == asdict(settings)
