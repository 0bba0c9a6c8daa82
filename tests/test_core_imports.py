"""``titan_lib.core`` is standard library only: the Lambda imports it."""

from __future__ import annotations

from conftest import imported_modules

FORBIDDEN = ("numpy", "pandas", "polars", "statsmodels", "vectorbt", "scipy", "numba", "pyarrow")


def test_core_imports_no_heavy_library() -> None:
    names = imported_modules("import titan_lib.core")
    assert "titan_lib" in names
    assert not names & set(FORBIDDEN), sorted(names & set(FORBIDDEN))
    assert "boto3" not in names and "botocore" not in names


def test_evaluating_a_model_stays_standard_library() -> None:
    code = """
from titan_lib.core import (FitSummary, Provenance, SignalModel, SignalRules, ZScoreSpec,
    evaluate)
m = SignalModel(y="A", x="B", beta=1.0, alpha=0.0, zscore=ZScoreSpec.ewma(halflife=5),
    rules=SignalRules(2.0, 0.5), fit=FitSummary("2020-01-01", "2020-01-01", 1),
    provenance=Provenance(code_version="t"))
prices = [(f"2020-01-{d:02d}", 10 + (d % 3)) for d in range(1, 29)]
s = evaluate(SignalModel.from_json(m.to_json()), {"A": prices, "B": prices[::-1][::-1]})
print(s.action)
"""
    names = imported_modules(code)
    assert not names & set(FORBIDDEN), sorted(names & set(FORBIDDEN))
