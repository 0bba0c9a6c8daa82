"""The block-streamed scan equals the in-memory composition, on one process or on Dask."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from titan_lib.data import ingest_frame
from titan_lib.data.synthetic import make_universe
from titan_lib.exceptions import ParameterError
from titan_lib.pairs import (
    benjamini_hochberg,
    engle_granger_batch,
    load_scan,
    price_panel,
    scan,
    scan_blocks,
)
from titan_lib.pairs.scan import NON_POSITIVE_HEDGE, SCAN_COLUMNS, rank_pairs
from titan_lib.pairs.spread_stats import batch_spread_statistics
from titan_lib.stores import open_store

MIN_OBS = 252
scan_module = importlib.import_module("titan_lib.pairs.scan")  # the package exports scan()


@pytest.fixture(scope="module")
def ragged_prices() -> pl.DataFrame:
    """Dense symbols, two with holes (per-pair path), a late starter, a constant leg and a
    symbol too short to test."""
    prices = make_universe(30, 600, n_pairs=5, seed=11).prices
    rng = np.random.default_rng(3)
    holes = pl.col("symbol").is_in(["S0003", "S0017"]) & pl.Series(rng.random(prices.height) < 0.05)
    prices = prices.filter(~holes)
    prices = prices.filter(
        ~((pl.col("symbol") == "S0020") & (pl.col("date") < pl.date(2011, 6, 1)))
    )
    prices = prices.with_columns(
        pl.when(pl.col("symbol") == "S0025").then(1.0).otherwise(pl.col("close")).alias("close")
    )
    return prices.filter(~((pl.col("symbol") == "S0026") & (pl.col("date") > pl.date(2010, 3, 1))))


def in_memory_table(prices: pl.DataFrame, chunk_size: int) -> pl.DataFrame:
    """The scan table composed from whole in-memory frames: every direction's batch row,
    statistics of every tested pair, q-values, then one sort."""
    panel = price_panel(prices, transform="log")
    n = len(panel.symbols)
    m = n * (n - 1) // 2
    both = engle_granger_batch(panel, both_directions=True, min_obs=MIN_OBS, chunk_size=chunk_size)
    forward, backward = both.head(m), both.slice(m, m)
    table = forward.with_columns(
        backward.get_column("tstat").alias("tstat_xy"),
        pl.col("pvalue").alias("pvalue_yx"),
        backward.get_column("pvalue").alias("pvalue_xy"),
        pl.coalesce(pl.col("reason"), backward.get_column("reason")).alias("reason"),
        pl.lit("symmetric").alias("direction"),
    ).with_columns(
        pl.when(pl.col("pvalue_yx").is_not_null() & pl.col("pvalue_xy").is_not_null())
        .then(pl.max_horizontal("pvalue_yx", "pvalue_xy"))
        .alias("pvalue")
    )
    yi, xi = np.triu_indices(n, 1)
    coef = table.select("hedge_ratio", "intercept", "trend_slope").fill_null(np.nan).to_numpy()
    stats = batch_spread_statistics(panel.values, yi, xi, np.ascontiguousarray(coef))
    p = table.get_column("pvalue").fill_null(np.nan).to_numpy()
    tested = pl.col("pvalue").is_not_null()
    table = (
        table.with_columns(
            pl.Series("spread_mean", stats[:, 0], nan_to_null=True),
            pl.Series("spread_std", stats[:, 1], nan_to_null=True),
            pl.Series("half_life", stats[:, 3], nan_to_null=True),
            pl.Series("hurst", stats[:, 4], nan_to_null=True),
            pl.Series("crossings", stats[:, 5], nan_to_null=True).cast(pl.Int64),
            pl.Series("qvalue", benjamini_hochberg(p, n_tests=m), nan_to_null=True),
        )
        .with_columns(
            pl.when(tested & (pl.col("hedge_ratio") <= 0))
            .then(pl.lit(NON_POSITIVE_HEDGE))
            .otherwise(pl.col("reason"))
            .alias("reason")
        )
        .with_columns((tested & pl.col("reason").is_null()).alias("tradable"))
        .sort(
            ["tradable", "qvalue", "pvalue", "tstat", "y", "x"],
            descending=[True, False, False, False, False, False],
            nulls_last=True,
            maintain_order=True,
        )
    )
    return table.with_row_index("rank", offset=1).select(
        [pl.col("rank").cast(pl.Int64), *SCAN_COLUMNS[1:]]
    )


@pytest.mark.parametrize("chunk_size", [6, 512])
def test_block_streamed_table_equals_the_in_memory_composition(
    ragged_prices: pl.DataFrame, chunk_size: int
) -> None:
    streamed = rank_pairs(ragged_prices, min_obs=MIN_OBS, chunk_size=chunk_size)
    assert_frame_equal(streamed, in_memory_table(ragged_prices, chunk_size), check_exact=True)
    reasons = set(streamed.get_column("reason").drop_nulls().unique().to_list())
    assert {NON_POSITIVE_HEDGE, "y is constant on the common sample"} <= reasons
    assert any(r.startswith("fewer than 252") for r in reasons)
    assert streamed.filter(pl.col("y") == "S0003").get_column("nobs").max() < 600  # per-pair path


def test_small_blocks_agree_with_one_block(ragged_prices: pl.DataFrame) -> None:
    small = rank_pairs(ragged_prices, min_obs=MIN_OBS, chunk_size=4)
    whole = rank_pairs(ragged_prices, min_obs=MIN_OBS, chunk_size=512)
    assert_frame_equal(small, whole, check_exact=False, rel_tol=1e-9, abs_tol=1e-11)


def test_statistics_only_for_the_pairs_that_can_be_selected(ragged_prices: pl.DataFrame) -> None:
    full = rank_pairs(ragged_prices, min_obs=MIN_OBS)
    some = rank_pairs(ragged_prices, min_obs=MIN_OBS, statistics_qvalue=0.3)
    statistics = ["half_life", "hurst", "crossings", "spread_mean", "spread_std"]
    assert_frame_equal(some.drop(statistics), full.drop(statistics), check_exact=True)
    wanted = full.get_column("hedge_ratio").is_not_null() & (full.get_column("qvalue") <= 0.3)
    assert 0 < int(wanted.sum()) < full.height
    assert some.get_column("spread_std").is_not_null().equals(wanted, check_names=False)
    assert_frame_equal(
        some.filter(wanted).select(statistics), full.filter(wanted).select(statistics)
    )
    with pytest.raises(ParameterError, match="statistics_qvalue"):
        rank_pairs(ragged_prices, statistics_qvalue=1.5)


def test_pairs_parquet_is_written_in_row_groups(
    ragged_prices: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan_blocks, "TABLE_SLICE_ROWS", 100)
    monkeypatch.setattr(scan_module, "TABLE_SLICE_ROWS", 100)
    store = str(tmp_path / "store")
    ingest_frame(ragged_prices, store=store)
    result = scan(store=store, progress=False, min_obs=MIN_OBS)
    path = open_store(store).local_path(f"scans/{result.scan_id}/pairs.parquet")
    assert path is not None
    assert pq.ParquetFile(path).metadata.num_row_groups == -(-result.pairs.height // 100)
    assert load_scan(result.scan_id, store=store).pairs.equals(result.pairs)
    assert result.pairs.equals(rank_pairs(ragged_prices, min_obs=MIN_OBS))


def test_one_large_block_on_dask_equals_the_local_run(tmp_path: Path) -> None:
    """A block as wide as the universe: the BLAS products run single-threaded everywhere,
    so a worker (where Dask sets OPENBLAS_NUM_THREADS=1) computes the same bits."""
    store = str(tmp_path / "store")
    ingest_frame(make_universe(100, 1000, n_pairs=10, seed=2024).prices, store=store)
    settings = {"store": store, "progress": False, "write": False, "statistics_qvalue": 0.05}
    local = scan(**settings).pairs  # type: ignore[arg-type]
    remote = scan(scheduler="local", **settings).pairs  # type: ignore[arg-type]
    assert local.height == 4950 and local.get_column("half_life").is_not_null().sum() >= 3
    assert remote.equals(local)


def _threads_a_task_may_use() -> tuple[int | None, int, int]:
    """On a worker: its thread count, and the product and compiled-loop threads of a task."""
    import numba as nb

    from titan_lib.pairs import eg_batch

    seen: list[tuple[int, int]] = []

    class Probe:
        def run(self) -> eg_batch.TaskResult:
            seen.append((eg_batch._workers(), nb.get_num_threads()))
            return None  # type: ignore[return-value]

    eg_batch.run_task(Probe())  # type: ignore[arg-type]
    return (eg_batch._dask_worker_threads(), *seen[0])


def test_a_task_on_a_dask_worker_uses_the_worker_threads_only() -> None:
    """Worker processes sharing a machine do not oversubscribe it: a task on a worker of
    one thread runs one product thread and one compiled-loop thread; outside Dask, every
    core this process may use."""
    import os

    from distributed import Client, LocalCluster

    from titan_lib.pairs import eg_batch

    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        assert client.submit(_threads_a_task_may_use, pure=False).result() == (1, 1, 1)
    here = _threads_a_task_may_use()
    assert here[0] is None and here[1] == len(os.sched_getaffinity(0)) == eg_batch._workers()


def test_block_pair_order_is_the_stable_sort_by_block_pair_then_legs() -> None:
    """The compiled counting sort orders requests as a stable sort by (block pair, b, a)."""
    from titan_lib.pairs.eg_kernel import block_pair_order

    rng = np.random.default_rng(5)
    n, chunk = 23, 5
    n_blocks = (n + chunk - 1) // chunk
    ly = rng.integers(0, n, 400)
    lx = (ly + rng.integers(1, n, 400)) % n  # two different legs
    order, starts, a, b, y_in_i = block_pair_order(ly, lx, chunk, n_blocks)
    lo_block, hi_block = np.minimum(ly, lx) // chunk, np.maximum(ly, lx) // chunk
    y_low = (ly // chunk < lx // chunk) | ((ly // chunk == lx // chunk) & (ly < lx))
    want_a = np.where(y_low, ly, lx) - lo_block * chunk
    want_b = np.where(y_low, lx, ly) - hi_block * chunk
    key = lo_block * n_blocks + hi_block
    expected = np.lexsort((np.arange(400), want_a, want_b, key))
    assert order.tolist() == expected.tolist()
    assert a.tolist() == want_a[expected].tolist() and b.tolist() == want_b[expected].tolist()
    assert y_in_i.tolist() == y_low[expected].tolist()
    assert np.diff(starts).tolist() == np.bincount(key, minlength=n_blocks**2).tolist()


def test_prepared_blocks_are_shared_locally_and_shipped_empty() -> None:
    """A plan's tasks share each block's products in this process; a pickled task (as sent
    to a Dask worker) carries none and prepares its own, with the same numbers."""
    import pickle

    from titan_lib.pairs.eg_batch import DenseTask, plan_batch

    panel = price_panel(make_universe(9, 400, n_pairs=2, seed=4).prices, transform="log")
    yi, xi = np.triu_indices(9, 1)
    tasks, _ = plan_batch(
        panel.values, yi, xi, trend="c", autolag="aic", maxlag=None, min_obs=100, chunk_size=4
    )
    dense = [t for t in tasks if isinstance(t, DenseTask)]
    assert len(dense) == 5 and len({id(t.prepared) for t in dense}) == 1  # blocks 4, 4, 1
    local = [t.run() for t in dense]
    assert dense[0].prepared is not None and len(dense[0].prepared._blocks) == 3
    shipped = [pickle.loads(pickle.dumps(t)) for t in dense]
    assert all(t.prepared is not None and not t.prepared._blocks for t in shipped)
    for here, there in zip(local, (t.run() for t in shipped), strict=True):
        assert np.array_equal(here.values, there.values, equal_nan=True)
        assert np.array_equal(here.codes, there.codes)
