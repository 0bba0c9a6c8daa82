"""Finding the runs each dashboard shows, read-only, from the run records in the store.

A run's kind follows from its notebook's name: ``02_pair_scan`` is a scan, ``05_backtest``
a backtest, ``06_walk_forward`` a walk-forward, ``04_regimes`` a regime fit. Only
successful runs have results (sidecars), so only those are offered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from titan_lib.runner.record import RunRecord, list_records
from titan_lib.stores.objects import ObjectStore

RunKind = Literal["scan", "analysis", "regimes", "backtest", "walk_forward", "publish"]

KIND_FRAGMENTS: dict[str, str] = {
    "scan": "pair_scan",
    "analysis": "pair_analysis",
    "regimes": "regimes",
    "backtest": "backtest",
    "walk_forward": "walk_forward",
    "publish": "publish",
}
"""Run kind -> the fragment its notebook's name contains."""


@dataclass(frozen=True)
class RunChoice:
    """A run as a menu entry: its id, kind and a readable label."""

    run_id: str
    kind: str
    notebook: str
    label: str


def run_kind(notebook: str) -> str | None:
    """The kind of a notebook's runs, or ``None`` when no dashboard shows them."""
    for kind, fragment in KIND_FRAGMENTS.items():
        if fragment in notebook:
            return kind
    return None


def run_label(record: RunRecord) -> str:
    """``2026-11-25 21:23 UTC · 02_pair_scan (pipeline step scan)`` for a menu."""
    when = record.started_at[:16].replace("T", " ")
    step = f" (step {record.step})" if record.step else ""
    return f"{when} UTC · {record.notebook}{step} · {record.run_id[-6:]}"


def successful_runs(store: ObjectStore, kinds: tuple[str, ...]) -> list[RunChoice]:
    """Successful runs of the given kinds, newest first."""
    choices = []
    for record in reversed(list_records(store, status="succeeded")):
        kind = run_kind(record.notebook)
        if kind in kinds:
            choices.append(RunChoice(record.run_id, kind, record.notebook, run_label(record)))
    return choices


def preselect(choices: list[RunChoice], wanted: str | None) -> RunChoice | None:
    """The choice whose run id is ``wanted`` (a full id or its unique start), else the
    newest; ``None`` when there are no choices."""
    if not choices:
        return None
    if wanted:
        matches = [c for c in choices if c.run_id == wanted or c.run_id.startswith(wanted)]
        if len(matches) == 1:
            return matches[0]
    return choices[0]


def count_runs(store: ObjectStore) -> dict[str, int]:
    """Successful runs per kind (kinds without runs included, as 0)."""
    counts = dict.fromkeys(KIND_FRAGMENTS, 0)
    for record in list_records(store, status="succeeded"):
        kind = run_kind(record.notebook)
        if kind is not None:
            counts[kind] += 1
    return counts
