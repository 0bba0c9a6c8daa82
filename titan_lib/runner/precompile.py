"""Compile the research code's numba kernels into numba's cache, once, at set-up.

On a fresh checkout the numba cache (``NUMBA_CACHE_DIR``; ``make`` sets ``.cache/numba``)
is empty, and the first call of each kernel compiles it: vectorbt's portfolio simulation
alone takes about 20 s of CPU. ``make`` starts this module in the background at set-up, so
the first pipeline, notebook or test run loads the kernels instead; a process that needs
vectorbt's simulation, the Engle-Granger kernels or the sweep while this module compiles
them waits for them (:mod:`titan_lib.compile_once`) rather than compiling them too. It runs
the two backtest engines, a sweep, batched Engle-Granger tests, a Kalman hedge and a Markov
regime fit on the bundled sample; kernels it does not reach are compiled on first use.

Usage: ``python -m titan_lib.runner.precompile``.
"""

from __future__ import annotations


def main() -> None:
    """Run each kernel family once on a few years of the bundled sample."""
    from titan_lib.backtest import Costs, backtest_pair, sweep
    from titan_lib.data import sample_prices
    from titan_lib.pairs import engle_granger_batch, kalman_hedge_ratio
    from titan_lib.regimes import log_returns, markov_regimes

    prices = sample_prices(["KO", "PEP", "XOM", "CVX", "SP500"])
    recent = prices.filter(prices["date"].dt.year() >= 2015)
    costs = Costs(commission_bps=2.0, commission_fixed=1.0, slippage_bps=3.0, borrow_bps=75.0)
    for engine in ("vectorbt", "numba"):
        backtest_pair(
            recent,
            "KO",
            "PEP",
            beta=1.0,
            entry=2.0,
            exit=0.5,
            window=60,
            costs=costs,
            engine=engine,
        )
    sweep(recent, "KO", "PEP", beta=1.0, grid={"entry": [1.5, 2.0], "exit": [0.5], "window": [60]})
    engle_granger_batch(recent, symbols=["KO", "PEP", "XOM", "CVX"], price_transform="log")
    closes = recent.filter(recent["symbol"] == "KO")["close"].to_numpy()
    kalman_hedge_ratio(closes, closes[::-1].copy())
    markov_regimes(log_returns(recent, "SP500"), 2, min_train=252, refit_every=252)


if __name__ == "__main__":
    main()
