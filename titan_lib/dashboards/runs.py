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
    pipeline: bool = False
    """Run as a step of a pipeline (the main job), not by hand or in a sweep."""


def run_kind(notebook: str) -> str | None:
    """The kind of a notebook's runs, or ``None`` when no dashboard shows them."""
    for kind, fragment in KIND_FRAGMENTS.items():
        if fragment in notebook:
            return kind
    return None


def run_label(record: RunRecord, swept: tuple[str, ...] = ()) -> str:
    """A menu label: when, which notebook, and how the run came about.

    ``2026-11-25 21:23 UTC · 05_backtest · pipeline step backtest · 3f9a2c`` for a
    pipeline step; a sweep run names its sweep and the values of the parameters the sweep
    varied (``swept``): ``... · sweep 8d01e4: entry_z=1.5, exit_z=0.5 · 3f9a2c``.
    """
    when = record.started_at[:16].replace("T", " ")
    if record.step:
        how = f" · pipeline step {record.step}"
    elif record.parent_id:
        values = ", ".join(f"{k}={record.parameters.get(k)!r}" for k in swept)
        how = f" · sweep {record.parent_id[-6:]}" + (f": {values}" if values else "")
    else:
        how = ""
    return f"{when} UTC · {record.notebook}{how} · {record.run_id[-6:]}"


def swept_parameters(records: list[RunRecord]) -> tuple[str, ...]:
    """The parameters whose values differ between the runs of one sweep, sorted."""
    keys = sorted({k for r in records for k in r.parameters})
    return tuple(k for k in keys if len({repr(r.parameters.get(k)) for r in records}) > 1)


def successful_runs(store: ObjectStore, kinds: tuple[str, ...]) -> list[RunChoice]:
    """Successful runs of the given kinds, newest first (sweep runs labelled with their
    parameters)."""
    records = [
        r
        for r in reversed(list_records(store, status="succeeded"))
        if run_kind(r.notebook) in kinds
    ]
    sweeps: dict[str, list[RunRecord]] = {}
    for record in records:
        if record.parent_id and not record.step:
            sweeps.setdefault(record.parent_id, []).append(record)
    swept = {parent: swept_parameters(members) for parent, members in sweeps.items()}
    return [
        RunChoice(
            record.run_id,
            str(run_kind(record.notebook)),
            record.notebook,
            run_label(record, swept.get(record.parent_id or "", ())),
            pipeline=bool(record.step),
        )
        for record in records
    ]


def preselect(
    choices: list[RunChoice], wanted: str | None, kind: str | None = None
) -> RunChoice | None:
    """The choice whose run id is ``wanted`` (a full id or its unique start), else the
    newest pipeline run (the main job's; of ``kind`` when given and there is one), else
    the newest; ``None`` when there are no choices."""
    if not choices:
        return None
    if wanted:
        matches = [c for c in choices if c.run_id == wanted or c.run_id.startswith(wanted)]
        if len(matches) == 1:
            return matches[0]
    steps = [c for c in choices if c.pipeline]
    return next((c for c in steps if c.kind == kind), steps[0] if steps else choices[0])


def count_runs(store: ObjectStore) -> dict[str, int]:
    """Successful runs per kind (kinds without runs included, as 0)."""
    counts = dict.fromkeys(KIND_FRAGMENTS, 0)
    for record in list_records(store, status="succeeded"):
        kind = run_kind(record.notebook)
        if kind is not None:
            counts[kind] += 1
    return counts
