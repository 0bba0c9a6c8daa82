"""``titan_lib.core`` and ``titan_lib.stores`` are standard library only: the Lambda imports them.

Checked at import time in a fresh interpreter, so indirect imports count too; the static
check over every import statement is ``tests/test_layers.py``.
"""

from __future__ import annotations

from conftest import HEAVY_LIBRARIES, REPO, imported_modules


def _modules_under(package: str) -> list[str]:
    """Every module of ``package`` and its subpackages, by dotted name."""
    folder = REPO.joinpath(*package.split("."))
    names = []
    for path in folder.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        names.append(".".join(parts[:-1] if path.stem == "__init__" else parts))
    return sorted(names)


def test_core_imports_no_heavy_library() -> None:
    names = imported_modules("import titan_lib.core")
    assert "titan_lib" in names
    assert not names & HEAVY_LIBRARIES, sorted(names & HEAVY_LIBRARIES)
    assert "boto3" not in names and "botocore" not in names


def test_every_core_and_stores_module_imports_no_heavy_library() -> None:
    modules = _modules_under("titan_lib.core") + _modules_under("titan_lib.stores")
    assert {"titan_lib.core.execution.service", "titan_lib.stores.s3"} <= set(modules)
    names = imported_modules("\n".join(f"import {m}" for m in modules))
    assert "botocore" in names  # the S3 store and its error classes were really imported
    assert not names & HEAVY_LIBRARIES, sorted(names & HEAVY_LIBRARIES)


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
    assert not names & HEAVY_LIBRARIES, sorted(names & HEAVY_LIBRARIES)
