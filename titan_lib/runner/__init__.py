"""Parameterised notebook runs with immutable run records, pipelines and sweeps.

Run a notebook (``titan run NOTEBOOK -f FILE -p NAME VALUE``) with
:func:`run_notebook`: parameters are checked against the notebook's ``parameters`` cell
before a kernel starts, papermill executes it on the ``titan`` kernel, and the run leaves
a record in the store. Chain notebooks with :func:`run_pipeline`, fan one out over a
parameter grid on Dask with :func:`run_sweep`.

Run record layout (store root, local folder or ``s3://bucket/prefix``)::

    runs/<run_id>/                  run_id = <UTC start, YYYYMMDDTHHMMSSmmmZ>-<6 hex>;
                                    ids sort by start time
        run.json                    the record, written last; a run exists once it is there
        output.ipynb                the executed notebook (with the error, if it failed)
        parameters.yaml             the values injected into the notebook
        results.json                the results sidecar (successful runs only)
        <table>.parquet             the sidecar's tables (successful runs only)
        report.html                 the notebook as HTML, code hidden (when exported)
    pipelines/<pipeline_id>/pipeline.json   a pipeline run: steps, run ids, status
    sweeps/<sweep_id>/sweep.json            a sweep: every parameter set and its outcome

Every file is written create-only: records are never changed after the fact.

``run.json`` (schema_version 1): ``run_id``, ``notebook`` (name without ``.ipynb``),
``status`` (``succeeded`` | ``failed``), ``started_at``/``ended_at`` (ISO 8601 UTC),
``duration_s``, ``parameters``, ``code_version`` (``git:<sha>[+dirty]`` or
``titan-lib==<version>``), ``packages`` (name to version), ``host``, ``python``,
``store``, ``parent_id`` (pipeline or sweep id), ``step`` (pipeline step name),
``error`` (``message``, ``cell_index``, ``execution_count``, ``ename``, ``evalue``) and
``files``.

``results.json`` (schema_version 1)::

    {"schema_version": 1, "run_id": "...", "notebook": "02_pair_scan",
     "values":  {...},                    # JSON results, read by later steps/dashboards
     "summary": {"label": value, ...},    # headline figures printed by `titan pipeline`
     "tables":  {"pairs": "pairs.parquet"}}

Notebooks write it with :func:`save_results`; readers use :func:`load_results`
(``.values``, ``.value("a.b")``, ``.table(name)`` as polars) or
:func:`latest_run_id`. Inside a run the kernel's environment holds ``TITAN_STORE``
(absolute store URI), ``TITAN_RUN_ID``, ``TITAN_NOTEBOOK`` and ``TITAN_RUN_DIR`` (the
sidecar's staging folder; the runner publishes it when the run succeeds).

What the research notebooks save (``values`` keys; ``tables``), for dashboards:

- ``01_ingest``: ``symbols``, ``first_date``, ``last_date``, ``rows``, ``rows_added``,
  ``gaps`` (symbol to missing days); table ``coverage``.
- ``02_pair_scan``: ``scan_id``, ``universe``, ``pairs_tested``, ``significant``,
  ``top_pairs`` / ``top_pair`` (see :mod:`titan_lib.runner.scan_sidecar`); table ``pairs``.
- ``03_pair_analysis``: ``pair``, ``y``, ``x``, ``scan_run_id``, ``hedge_ratio``,
  ``intercept``, ``static_hedges``, ``spread_stats``, ``kalman_last``, ``rolling_last``,
  ``z_last``, ``subperiods``; tables ``series`` (date, legs, spread, z, rolling and Kalman
  hedge ratio) and ``subperiods``.
- ``04_regimes``: ``pair``, ``market``, ``k_regimes``, ``model`` (means, variances,
  transition), ``per_regime``, ``current_regime``; tables ``regimes`` (date, filtered
  ``prob_<i>``, ``regime``) and ``spread_by_regime``.
- ``05_backtest``: ``pair``, ``beta``, ``alpha``, ``rule``, ``costs``, ``stats``,
  ``objective``, ``best`` (best sweep row); tables ``equity``, ``trades``, ``sweep``.
- ``06_walk_forward``: ``universe``, ``stats`` (out of sample), ``degradation``,
  ``n_windows``, ``pairs_selected``, ``last_window_pairs``; tables ``windows``,
  ``selections``, ``equity``, ``trades``.
- ``07_publish``: ``approved``, ``models`` (pair, model_id, created, rule), ``model_ids``,
  ``served_models``; tables ``decisions`` and ``signals`` (current signal per model).

Importing this package is cheap: papermill, nbconvert, polars and Dask are imported by
the functions that need them.
"""

from titan_lib.runner.execute import run_notebook
from titan_lib.runner.parameter_files import collect_parameters, resolve_notebook
from titan_lib.runner.parameters import NotebookParameter, inspect_parameters, validate_parameters
from titan_lib.runner.pipeline import PipelineResult, load_pipeline, run_pipeline
from titan_lib.runner.record import RunError, RunRecord, list_records, read_record
from titan_lib.runner.report import export_report
from titan_lib.runner.results import (
    RunResults,
    current_run_id,
    latest_run_id,
    load_results,
    save_results,
)
from titan_lib.runner.sweep import SweepResult, load_grid, run_sweep

__all__ = [
    "NotebookParameter",
    "PipelineResult",
    "RunError",
    "RunRecord",
    "RunResults",
    "SweepResult",
    "collect_parameters",
    "current_run_id",
    "export_report",
    "inspect_parameters",
    "latest_run_id",
    "list_records",
    "load_grid",
    "load_pipeline",
    "load_results",
    "read_record",
    "resolve_notebook",
    "run_notebook",
    "run_pipeline",
    "run_sweep",
    "save_results",
    "validate_parameters",
]
