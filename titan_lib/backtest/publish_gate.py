"""The publish gate: the policy a candidate pair must pass before it is served.

A candidate is judged on evidence (:class:`CandidateEvidence`, computed by
:mod:`titan_lib.backtest.candidate_evidence`) against a frozen :class:`PublishPolicy`:

==================  =================================================  ================
criterion           evidence                                           default
==================  =================================================  ================
``qvalue``          Benjamini-Hochberg q-value over every pair of the  ``<= 0.05``
                    universe (Benjamini & Hochberg 1995)
``hedge_ratio``     sign of the hedge ratio: long the spread must be   ``> 0``
                    long one leg and short the other
``half_life``       AR(1) half-life of the spread, in sessions         ``1 .. 60``
``stability``       share of sub-periods in which the pair is still    ``>= 0.5``
                    cointegrated (Engle-Granger, MacKinnon p-values)
``oos_sharpe``      walk-forward out-of-sample Sharpe (annualised)     ``> 0``
``degradation``     mean out-of-sample over mean in-sample Sharpe of   ``>= 0.5``
                    the walk-forward windows
``deflated_sharpe`` deflated Sharpe ratio of the chosen rule over      ``>= 0.95``
                    every trial (Bailey & Lopez de Prado 2014)
``pbo``             probability of backtest overfitting, CSCV          ``<= 0.5``
                    (Bailey, Borwein, Lopez de Prado & Zhu 2015)
``regime_gate``     walk-forward out-of-sample Sharpe with the regime  ``> 0``
                    gate minus without it (passes when no gate)
==================  =================================================  ================

Missing evidence fails its criterion. :func:`approve` turns a verdict into the
:class:`~titan_lib.core.signal_model.Approval` recorded in the model document, refusing a
failing candidate unless an override with a reason is given; :func:`publish_approved` runs
the gate and publishes. Every publish path (notebook ``07_publish``, ``titan models
publish``) goes through :func:`publish_approved`.

Standard library only (plus the core), so every face can run it.
"""

from __future__ import annotations

import getpass
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any

from titan_lib.core.model_registry import PublishResult, publish
from titan_lib.core.signal_model import Approval, GateCriterion, GateOverride, SignalModel
from titan_lib.exceptions import ParameterError, TitanError
from titan_lib.stores.objects import ObjectStore

POLICY_NAME = "publish-gate/1"


class PublishRefusedError(TitanError):
    """A candidate failed the publish gate and no override was given; nothing was written."""

    code = "publish_refused"


@dataclass(frozen=True)
class PublishPolicy:
    """Thresholds of the publish gate (module docstring). Half-lives are in sessions."""

    max_qvalue: float = 0.05
    min_half_life: float = 1.0
    max_half_life: float = 60.0
    min_stability: float = 0.5
    min_oos_sharpe: float = 0.0
    min_oos_is_ratio: float = 0.5
    min_deflated_sharpe: float = 0.95
    max_pbo: float = 0.5
    min_gate_sharpe_gain: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ParameterError(f"policy {f.name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ParameterError(f"policy {f.name} must be finite, got {value!r}")
            object.__setattr__(self, f.name, float(value))
        for name in ("max_qvalue", "min_stability", "min_deflated_sharpe", "max_pbo"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ParameterError(f"policy {name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.min_half_life < self.max_half_life:
            raise ParameterError(
                "policy half-life range needs 0 <= min_half_life < max_half_life, got "
                f"{self.min_half_life}..{self.max_half_life}"
            )


@dataclass(frozen=True)
class CandidateEvidence:
    """The numbers a candidate is judged on (``None``: not available, which fails).

    Attributes
    ----------
    qvalue
        Benjamini-Hochberg q-value of the pair over the whole universe.
    hedge_ratio
        Hedge ratio of the served spread (units of ``y`` per unit of ``x``).
    half_life
        Spread half-life in sessions.
    stability
        Share (0..1) of sub-periods in which the pair stays cointegrated.
    oos_sharpe, is_sharpe, oos_mean_sharpe
        Walk-forward: Sharpe of the stitched out-of-sample equity (annualised), and the
        mean in-sample and out-of-sample Sharpe over its windows (degradation).
    deflated_sharpe, pbo
        Deflated Sharpe ratio of the chosen rule and the probability of backtest
        overfitting of the choice.
    has_gate
        Whether the model carries a regime gate (then the gate evidence is required).
    gate_sharpe_with, gate_sharpe_without
        Walk-forward out-of-sample Sharpe of the same rule with and without the gate.
    """

    qvalue: float | None = None
    hedge_ratio: float | None = None
    half_life: float | None = None
    stability: float | None = None
    oos_sharpe: float | None = None
    is_sharpe: float | None = None
    oos_mean_sharpe: float | None = None
    deflated_sharpe: float | None = None
    pbo: float | None = None
    has_gate: bool = False
    gate_sharpe_with: float | None = None
    gate_sharpe_without: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name == "has_gate":
                object.__setattr__(self, f.name, bool(self.has_gate))
                continue
            value = getattr(self, f.name)
            if value is not None:
                value = float(value)
                object.__setattr__(self, f.name, value if math.isfinite(value) else None)

    def items(self) -> tuple[tuple[str, float | None], ...]:
        """``(name, value)`` of every field (``has_gate`` as 1.0 or 0.0)."""
        return tuple(
            (
                f.name,
                float(getattr(self, f.name)) if f.name == "has_gate" else getattr(self, f.name),
            )
            for f in fields(self)
        )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> CandidateEvidence:
        """Evidence from a mapping of field names (unknown names are an error)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ParameterError(f"unknown evidence field(s): {', '.join(unknown)}")
        return cls(**{k: v for k, v in values.items() if v is not None or k != "has_gate"})


def _at_most(name: str, value: float | None, limit: float) -> GateCriterion:
    return GateCriterion(name, value, f"<= {limit:g}", value is not None and value <= limit)


def _at_least(name: str, value: float | None, limit: float) -> GateCriterion:
    return GateCriterion(name, value, f">= {limit:g}", value is not None and value >= limit)


def _above(name: str, value: float | None, limit: float) -> GateCriterion:
    return GateCriterion(name, value, f"> {limit:g}", value is not None and value > limit)


def evaluate_candidate(
    evidence: CandidateEvidence, policy: PublishPolicy | None = None
) -> Approval:
    """Judge a candidate: every criterion with its value, threshold and outcome.

    Returns
    -------
    Approval
        ``passed`` when every criterion passes; no override.
    """
    p = PublishPolicy() if policy is None else policy
    e = evidence
    ratio = None
    if e.is_sharpe is not None and e.oos_mean_sharpe is not None and e.is_sharpe > 0.0:
        ratio = e.oos_mean_sharpe / e.is_sharpe
    half_life = GateCriterion(
        "half_life",
        e.half_life,
        f"{p.min_half_life:g} .. {p.max_half_life:g}",
        e.half_life is not None and p.min_half_life <= e.half_life <= p.max_half_life,
    )
    if e.has_gate:
        gain = None
        if e.gate_sharpe_with is not None and e.gate_sharpe_without is not None:
            gain = e.gate_sharpe_with - e.gate_sharpe_without
        gate = _above("regime_gate", gain, p.min_gate_sharpe_gain)
    else:
        gate = GateCriterion("regime_gate", None, "no gate, or a gate that helps", True)
    criteria = (
        _at_most("qvalue", e.qvalue, p.max_qvalue),
        _above("hedge_ratio", e.hedge_ratio, 0.0),
        half_life,
        _at_least("stability", e.stability, p.min_stability),
        _above("oos_sharpe", e.oos_sharpe, p.min_oos_sharpe),
        _at_least("degradation", ratio, p.min_oos_is_ratio),
        _at_least("deflated_sharpe", e.deflated_sharpe, p.min_deflated_sharpe),
        _at_most("pbo", e.pbo, p.max_pbo),
        gate,
    )
    return Approval(
        passed=all(c.passed for c in criteria),
        criteria=criteria,
        evidence=e.items(),
        policy=POLICY_NAME,
    )


def approve(
    verdict: Approval, override_reason: str | None = None, by: str | None = None
) -> Approval:
    """The approval to record: the verdict itself when it passed, else the verdict with
    an override (``override_reason``, ``by``, now).

    Raises
    ------
    PublishRefusedError
        The verdict failed and no override reason was given; names every failed criterion.
    """
    if verdict.passed:
        return verdict
    reason = (override_reason or "").strip()
    if not reason:
        failed = "; ".join(c.describe() for c in verdict.failed)
        raise PublishRefusedError(
            f"the candidate fails the publish gate: {failed}. Publish it anyway only with an "
            'override and its reason (--override "reason" / override_reason)',
            {"failed": [c.name for c in verdict.failed]},
        )
    who = by or _user()
    override = GateOverride(reason=reason, by=who, at=datetime.now(UTC).isoformat())
    return replace(verdict, override=override)


@dataclass(frozen=True)
class PublicationPlan:
    """Which judged candidates are published, by their index in the judged list.

    ``passing``: every candidate that passed; ``chosen``: those to publish, in order;
    ``overridden``: the chosen ones that failed (published only under an override).
    """

    passing: tuple[int, ...]
    chosen: tuple[int, ...]
    overridden: tuple[int, ...]


def plan_publication(
    passed: Sequence[bool],
    *,
    named: bool = False,
    n_models: int = 3,
    override_reason: str | None = None,
) -> PublicationPlan:
    """Choose what to publish from candidates judged in rank order (best first).

    Parameters
    ----------
    passed
        Per candidate, in rank order: did it pass the publish gate (and any extra check)?
    named
        The researcher named the candidates (rather than taking the scan's best): every
        passing one is published, and the failing ones too only under an override.
    n_models
        At most this many passing candidates are published when ``named`` is false.
    override_reason
        The recorded reason to publish failing candidates; empty or ``None``: none is.
        Without named candidates an override publishes only the best candidate, and
        only when none passed.

    Returns
    -------
    PublicationPlan
    """
    if n_models < 1:
        raise ParameterError(f"n_models must be >= 1, got {n_models}")
    override = bool((override_reason or "").strip())
    passing = tuple(i for i, ok in enumerate(passed) if ok)
    failing = tuple(i for i, ok in enumerate(passed) if not ok)
    if named:
        chosen = passing + (failing if override else ())
    elif passing:
        chosen = passing[:n_models]
    else:
        chosen = failing[:1] if override else ()
    return PublicationPlan(
        passing=passing,
        chosen=chosen,
        overridden=tuple(i for i in chosen if i not in passing),
    )


def publish_approved(
    model: SignalModel,
    evidence: CandidateEvidence,
    *,
    policy: PublishPolicy | None = None,
    override_reason: str | None = None,
    by: str | None = None,
    store: ObjectStore | str | None = None,
) -> tuple[PublishResult, Approval]:
    """Run the gate on ``evidence`` and publish ``model`` with the approval recorded.

    A failing candidate without an override raises before anything is written.

    Raises
    ------
    PublishRefusedError
        The candidate failed and no override reason was given.
    """
    approval = approve(evaluate_candidate(evidence, policy), override_reason, by)
    approved = replace(model, approval=approval)
    return publish(approved, store), approval


def recorded_evidence(model: SignalModel) -> CandidateEvidence:
    """The evidence stored in a model document's approval (empty when it has none)."""
    if model.approval is None:
        return CandidateEvidence(has_gate=model.gate is not None)
    values = dict(model.approval.evidence)
    values["has_gate"] = model.gate is not None
    return CandidateEvidence.from_mapping(values)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
