"""SignalModel: the immutable, versioned artefact that production serves.

A model trades the spread of two legs::

    spread = f(y) - beta * f(x) - alpha,     f = ln (transform "log") or identity ("level")

with a z-score method and its state (:mod:`titan_lib.core.zscore`), the thresholds and time
stop of the state machine (:mod:`titan_lib.core.state_machine`), an optional regime gate
(:mod:`titan_lib.core.regime_gate`), the fitted window with its statistics, and provenance.

JSON (``schema_version`` 1) is the only stored form. ``model_id`` is the SHA-256 hex digest
of the canonical JSON (sorted keys, no whitespace, floats in shortest round-trip form) of
every field except ``model_id``, ``provenance`` and the approval's ``override`` and
``status``: the id names what is served, what it was fitted on and the evidence it was
judged on, so the same content published by two runs or at two times (``created_at``,
``run_id``, ``code_version`` differ) is the same model. Reading checks the stored id against
the content.

``approval`` (optional) records the publish gate's verdict on the model: the evidence, each
criterion with its value, threshold and outcome (covered by the id, so altered evidence is
detected), and any override (reason, who, when) that published a failing candidate (like
provenance, outside the id). Documents without an approval keep the ids they always had.

Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property
from typing import Any, Literal

from titan_lib.core.regime_gate import (
    GATE_SOURCES,
    MarkovRegimeModel,
    RegimeGate,
    RegimeModel,
    VolatilityRegimeModel,
)
from titan_lib.core.state_machine import check_thresholds
from titan_lib.core.zscore import ZSCORE_METHODS, EwmaState, ZScoreSpec
from titan_lib.exceptions import DataValidationError, ParameterError, SchemaVersionError

SIGNAL_MODEL_SCHEMA_VERSION = 1
PriceTransform = Literal["log", "level"]
PRICE_TRANSFORMS: tuple[str, ...] = ("log", "level")


@dataclass(frozen=True)
class SignalRules:
    """Thresholds (z units) and time stop of the state machine.

    ``0 <= exit < entry < stop``; ``stop = inf`` disables the stop-loss. The time stop is
    ``time_stop_half_lives`` times the fitted half-life, in bars (``None``: no time stop);
    :meth:`max_hold` turns it into the bars the state machine and the backtest's ``PairRule``
    use. Thresholds are checked by :func:`~titan_lib.core.state_machine.check_thresholds`.
    """

    entry: float
    exit: float
    stop: float = math.inf
    time_stop_half_lives: float | None = None

    def __post_init__(self) -> None:
        for name in ("entry", "exit", "stop"):
            object.__setattr__(self, name, float(getattr(self, name)))
        check_thresholds(self.entry, self.exit, self.stop)
        if self.time_stop_half_lives is not None:
            k = float(self.time_stop_half_lives)
            if not (math.isfinite(k) and k > 0.0):
                raise ParameterError(f"time_stop_half_lives must be > 0, got {k}")
            object.__setattr__(self, "time_stop_half_lives", k)

    def max_hold(self, half_life: float | None) -> float:
        """Time stop in bars: ``time_stop_half_lives * half_life`` (``inf`` when unset)."""
        if self.time_stop_half_lives is None:
            return math.inf
        if half_life is None or not (math.isfinite(half_life) and half_life > 0.0):
            raise ParameterError(f"a time stop needs a finite half-life > 0, got {half_life!r}")
        return self.time_stop_half_lives * half_life


@dataclass(frozen=True)
class FitSummary:
    """The fitted window and its statistics.

    ``start``/``end`` are ISO dates (inclusive), ``nobs`` the bars in the window,
    ``pvalue`` the cointegration p-value, ``half_life`` the spread half-life in bars, and
    ``spread_mean``/``spread_std`` the spread's mean and sample std (``ddof=1``) there.
    """

    start: str
    end: str
    nobs: int
    pvalue: float | None = None
    half_life: float | None = None
    spread_mean: float | None = None
    spread_std: float | None = None

    def __post_init__(self) -> None:
        for name in ("pvalue", "half_life", "spread_mean", "spread_std"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, float(value))
        for name in ("start", "end"):
            try:
                date.fromisoformat(getattr(self, name))
            except (TypeError, ValueError):
                raise ParameterError(
                    f"fit {name} must be an ISO date, got {getattr(self, name)!r}"
                ) from None
        if self.nobs < 1 or self.start > self.end:
            raise ParameterError(
                f"fit window {self.start}..{self.end} with {self.nobs} bars is empty"
            )


@dataclass(frozen=True)
class Provenance:
    """Where a model came from: producing run, code version, creation time (ISO, UTC)."""

    code_version: str
    run_id: str | None = None
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


@dataclass(frozen=True)
class GateCriterion:
    """One criterion of the publish gate: its ``value`` (``None``: no evidence), the
    ``threshold`` as text (e.g. ``"<= 0.05"``) and whether it ``passed``."""

    name: str
    value: float | None
    threshold: str
    passed: bool

    def __post_init__(self) -> None:
        if self.value is not None:
            value = float(self.value)
            object.__setattr__(self, "value", value if math.isfinite(value) else None)

    def describe(self) -> str:
        """``"qvalue 0.157 (needs <= 0.05)"``, or ``"... no evidence ..."``."""
        shown = "no evidence" if self.value is None else f"{self.value:.4g}"
        return f"{self.name} {shown} (needs {self.threshold})"


@dataclass(frozen=True)
class GateOverride:
    """A person's decision to publish a candidate that failed the gate."""

    reason: str
    by: str
    at: str

    def __post_init__(self) -> None:
        if not self.reason.strip():
            raise ParameterError("an override needs a reason")


@dataclass(frozen=True)
class Approval:
    """The publish gate's verdict on a model, and any override.

    ``passed`` is the verdict of ``criteria`` (all passed); ``evidence`` holds the numbers
    they were judged on (``None``: missing), sorted by name; ``policy`` names the policy
    and its version.
    """

    passed: bool
    criteria: tuple[GateCriterion, ...]
    evidence: tuple[tuple[str, float | None], ...] = ()
    policy: str = "publish-gate/1"
    override: GateOverride | None = None

    def __post_init__(self) -> None:
        evidence = sorted((str(k), None if v is None else float(v)) for k, v in self.evidence)
        object.__setattr__(self, "evidence", tuple(evidence))
        object.__setattr__(self, "criteria", tuple(self.criteria))
        if self.passed != all(c.passed for c in self.criteria):
            raise ParameterError("approval.passed must equal every criterion passing")

    @property
    def failed(self) -> tuple[GateCriterion, ...]:
        """The criteria that failed."""
        return tuple(c for c in self.criteria if not c.passed)

    @property
    def status(self) -> str:
        """``"passed"``, ``"override"`` (failed, published under an override) or
        ``"failed"``."""
        if self.passed:
            return "passed"
        return "override" if self.override is not None else "failed"

    def describe(self) -> str:
        """One line for people: the verdict, failed criteria and the override."""
        if self.passed:
            return f"passed the publish gate ({len(self.criteria)} criteria)"
        failed = "; ".join(c.describe() for c in self.failed)
        text = f"FAILED the publish gate: {failed}"
        if self.override is not None:
            o = self.override
            text += f". Published under an override by {o.by} at {o.at}: {o.reason}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """The ``approval`` section of a model document."""
        return {
            **self.verdict(),
            "status": self.status,
            "override": None
            if self.override is None
            else {"reason": self.override.reason, "by": self.override.by, "at": self.override.at},
        }

    def verdict(self) -> dict[str, Any]:
        """Policy, outcome, criteria and evidence: the part the model id covers."""
        return {
            "policy": self.policy,
            "passed": self.passed,
            "criteria": [
                {"name": c.name, "value": c.value, "threshold": c.threshold, "passed": c.passed}
                for c in self.criteria
            ],
            "evidence": dict(self.evidence),
        }


@dataclass(frozen=True)
class LegQuantities:
    """Signed quantities (shares) and notionals (currency) of the two legs."""

    y_quantity: float
    x_quantity: float
    y_notional: float
    x_notional: float


@dataclass(frozen=True)
class SignalModel:
    """A published pair-trading model (see the module docstring)."""

    y: str
    x: str
    beta: float
    alpha: float
    zscore: ZScoreSpec
    rules: SignalRules
    fit: FitSummary
    provenance: Provenance
    transform: PriceTransform = "log"
    gate: RegimeGate | None = None
    schema_version: int = SIGNAL_MODEL_SCHEMA_VERSION
    approval: Approval | None = None

    def __post_init__(self) -> None:
        if not self.y or not self.x or self.y == self.x:
            raise ParameterError(
                f"a signal model needs two distinct legs, got {self.y!r}, {self.x!r}"
            )
        object.__setattr__(self, "beta", float(self.beta))
        object.__setattr__(self, "alpha", float(self.alpha))
        if not (math.isfinite(self.beta) and math.isfinite(self.alpha)):
            raise ParameterError(f"beta and alpha must be finite, got {self.beta}, {self.alpha}")
        if self.transform not in PRICE_TRANSFORMS:
            raise ParameterError(f"transform must be 'log' or 'level', got {self.transform!r}")
        if self.schema_version != SIGNAL_MODEL_SCHEMA_VERSION:
            raise SchemaVersionError(
                f"signal model schema_version {self.schema_version} is not "
                f"{SIGNAL_MODEL_SCHEMA_VERSION}"
            )
        self.rules.max_hold(self.fit.half_life)  # a time stop needs a half-life
        state = self.zscore.state
        if self.zscore.method == "ewma" and state is not None and state.as_of != self.fit.end:
            raise ParameterError(f"EWMA state is as of {state.as_of}, the fit ends {self.fit.end}")

    @property
    def symbols(self) -> tuple[str, ...]:
        """Symbols whose prices evaluation needs: the legs, then the gate's market series."""
        if self.gate is not None and self.gate.market_symbol is not None:
            return (self.y, self.x, self.gate.market_symbol)
        return (self.y, self.x)

    @property
    def max_hold(self) -> float:
        """Time stop in bars (``inf`` for none)."""
        return self.rules.max_hold(self.fit.half_life)

    def spread(self, y_price: float, x_price: float) -> float:
        """``f(y) - beta f(x) - alpha`` for one pair of prices."""
        if self.transform == "log":
            return math.log(y_price) - self.beta * math.log(x_price) - self.alpha
        return y_price - self.beta * x_price - self.alpha

    def leg_quantities(
        self, notional: float, y_price: float, x_price: float, side: int = 1
    ) -> LegQuantities:
        """Leg sizes for a gross ``notional`` (currency) in the spread.

        ``side=+1`` is long the spread (long ``y``, short ``beta`` of ``x``), ``-1`` short.
        Gross notional ``|y_notional| + |x_notional| = notional``. With ``transform="level"``
        ``beta`` is a share ratio: ``x_quantity = -beta * y_quantity``. With ``"log"`` it is
        a value ratio (log prices move by returns): ``x_notional = -beta * y_notional``.
        Quantities are fractional; rounding to tradable lots is the broker's job.
        """
        if not (math.isfinite(notional) and notional >= 0.0):
            raise ParameterError(f"notional must be finite and >= 0, got {notional}")
        if not (y_price > 0.0 and x_price > 0.0):
            raise ParameterError(f"leg prices must be > 0, got y={y_price}, x={x_price}")
        if side not in (-1, 0, 1):
            raise ParameterError(f"side must be -1, 0 or +1, got {side}")
        if self.transform == "level":
            y_qty = side * notional / (y_price + abs(self.beta) * x_price)
            x_qty = -self.beta * y_qty
            return LegQuantities(y_qty, x_qty, y_qty * y_price, x_qty * x_price)
        y_value = side * notional / (1.0 + abs(self.beta))
        x_value = -self.beta * y_value
        return LegQuantities(y_value / y_price, x_value / x_price, y_value, x_value)

    @cached_property
    def model_id(self) -> str:
        """SHA-256 of the canonical JSON of everything but provenance (module docstring)."""
        canonical = json.dumps(
            self._content(),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
            allow_nan=False,
        )
        return hashlib.sha256(canonical.encode("ascii")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """The JSON document as plain Python objects (an infinite stop becomes ``null``)."""
        doc = self._content()
        doc["provenance"] = {
            "run_id": self.provenance.run_id,
            "code_version": self.provenance.code_version,
            "created_at": self.provenance.created_at,
        }
        if self.approval is not None:
            doc["approval"] = self.approval.to_dict()  # adds status and override
        doc["model_id"] = self.model_id
        return doc

    def _content(self) -> dict[str, Any]:
        """Every field that the id covers."""
        z = self.zscore
        state = z.state
        content: dict[str, Any] = {
            "schema_version": self.schema_version,
            "legs": {"y": self.y, "x": self.x},
            "hedge": {"beta": self.beta, "alpha": self.alpha, "transform": self.transform},
            "zscore": {
                "method": z.method,
                "window": z.window,
                "halflife": z.halflife,
                "span": z.span,
                "min_periods": z.min_periods,
                "mean": z.mean,
                "std": z.std,
                "state": None
                if state is None
                else {
                    "mean": state.mean,
                    "var": state.var,
                    "count": state.count,
                    "as_of": state.as_of,
                },
            },
            "rules": {
                "entry": self.rules.entry,
                "exit": self.rules.exit,
                "stop": None if math.isinf(self.rules.stop) else self.rules.stop,
                "time_stop_half_lives": self.rules.time_stop_half_lives,
            },
            "gate": None if self.gate is None else _gate_to_dict(self.gate),
            "fit": {
                "start": self.fit.start,
                "end": self.fit.end,
                "nobs": self.fit.nobs,
                "pvalue": self.fit.pvalue,
                "half_life": self.fit.half_life,
                "spread_mean": self.fit.spread_mean,
                "spread_std": self.fit.spread_std,
            },
        }
        if self.approval is not None:
            content["approval"] = self.approval.verdict()
        return content

    def to_json(self) -> str:
        """Stable, human-readable JSON (sorted keys, two-space indent)."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=2, allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> SignalModel:
        """Parse and validate a model document; see :meth:`from_dict`."""
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise DataValidationError(f"signal model is not valid JSON: {exc}") from None
        return cls.from_dict(doc)

    @classmethod
    def from_dict(cls, doc: Any) -> SignalModel:
        """Build a model from its JSON document, strictly.

        Raises
        ------
        SchemaVersionError
            ``schema_version`` is newer (or other) than this code reads.
        DataValidationError
            A field is missing, unknown, of the wrong type or out of range (the message
            names it), or ``model_id`` does not match the content.
        """
        root = _Fields(doc, "signal model")
        version = root.integer("schema_version")
        if version != SIGNAL_MODEL_SCHEMA_VERSION:
            raise SchemaVersionError(
                f"signal model has schema_version {version}; this code reads "
                f"{SIGNAL_MODEL_SCHEMA_VERSION}"
                + (" (written by newer code: upgrade titan_lib)" if version > 1 else ""),
                {"schema_version": version},
            )
        legs = root.section("legs")
        hedge = root.section("hedge")
        zdoc = root.section("zscore")
        rdoc = root.section("rules")
        fdoc = root.section("fit")
        pdoc = root.section("provenance")
        gdoc = root.optional_section("gate")
        adoc = root.optional_section("approval")
        stored_id = root.optional_string("model_id")
        root.done()
        try:
            y, x = legs.string("y"), legs.string("x")
            legs.done()
            beta, alpha = hedge.number("beta"), hedge.number("alpha")
            transform = hedge.choice("transform", PRICE_TRANSFORMS)
            hedge.done()
            zscore = _zscore_from(zdoc)
            stop = rdoc.optional_number("stop")
            rules = SignalRules(
                entry=rdoc.number("entry"),
                exit=rdoc.number("exit"),
                stop=math.inf if stop is None else stop,
                time_stop_half_lives=rdoc.optional_number("time_stop_half_lives"),
            )
            rdoc.done()
            fit = FitSummary(
                start=fdoc.iso_date("start"),
                end=fdoc.iso_date("end"),
                nobs=fdoc.integer("nobs"),
                pvalue=fdoc.optional_number("pvalue"),
                half_life=fdoc.optional_number("half_life"),
                spread_mean=fdoc.optional_number("spread_mean"),
                spread_std=fdoc.optional_number("spread_std"),
            )
            fdoc.done()
            provenance = Provenance(
                code_version=pdoc.string("code_version"),
                run_id=pdoc.optional_string("run_id"),
                created_at=pdoc.string("created_at"),
            )
            pdoc.done()
            gate = None if gdoc is None else _gate_from(gdoc)
            approval = None if adoc is None else _approval_from(adoc)
            model = cls(
                y=y,
                x=x,
                beta=beta,
                alpha=alpha,
                zscore=zscore,
                rules=rules,
                fit=fit,
                provenance=provenance,
                transform=transform,  # type: ignore[arg-type]
                gate=gate,
                approval=approval,
            )
        except ParameterError as exc:
            raise DataValidationError(f"signal model JSON is invalid: {exc.message}") from None
        if stored_id is not None and stored_id != model.model_id:
            raise DataValidationError(
                f"signal model_id {stored_id} does not match its content "
                f"(content hash {model.model_id}): the document was altered",
                {"model_id": stored_id},
            )
        return model


def _gate_to_dict(gate: RegimeGate) -> dict[str, Any]:
    model: dict[str, Any]
    if isinstance(gate.model, VolatilityRegimeModel):
        model = {
            "window": gate.model.window,
            "thresholds": list(gate.model.thresholds),
            "quantiles": list(gate.model.quantiles),
        }
    else:
        model = {
            "means": list(gate.model.means),
            "variances": list(gate.model.variances),
            "transition": [list(row) for row in gate.model.transition],
            "initial": list(gate.model.initial),
        }
    return {
        "kind": gate.kind,
        "source": gate.source,
        "market_symbol": gate.market_symbol,
        "blocked": list(gate.blocked),
        "flatten": gate.flatten,
        "model": model,
    }


def _gate_from(doc: _Fields) -> RegimeGate:
    kind = doc.choice("kind", ("volatility", "markov"))
    source = doc.choice("source", GATE_SOURCES)
    market_symbol = doc.optional_string("market_symbol")
    blocked = tuple(int(v) for v in doc.number_list("blocked", integers=True))
    flatten = doc.boolean("flatten")
    mdoc = doc.section("model")
    doc.done()
    regime_model: RegimeModel
    if kind == "volatility":
        regime_model = VolatilityRegimeModel(
            window=mdoc.integer("window"),
            thresholds=tuple(mdoc.number_list("thresholds")),
            quantiles=tuple(mdoc.number_list("quantiles")),
        )
    else:
        regime_model = MarkovRegimeModel(
            means=tuple(mdoc.number_list("means")),
            variances=tuple(mdoc.number_list("variances")),
            transition=tuple(tuple(row) for row in mdoc.matrix("transition")),
            initial=tuple(mdoc.number_list("initial")),
        )
    mdoc.done()
    return RegimeGate(
        model=regime_model,
        blocked=blocked,
        flatten=flatten,
        source=source,  # type: ignore[arg-type]
        market_symbol=market_symbol,
    )


def _approval_from(doc: _Fields) -> Approval:
    policy = doc.string("policy")
    passed = doc.boolean("passed")
    status = doc.choice("status", ("passed", "override", "failed"))
    criteria = []
    for i, item in enumerate(doc.object_list("criteria")):
        cdoc = _Fields(item, f"{doc.path}.criteria[{i}]")
        criteria.append(
            GateCriterion(
                name=cdoc.string("name"),
                value=cdoc.optional_number("value"),
                threshold=cdoc.string("threshold"),
                passed=cdoc.boolean("passed"),
            )
        )
        cdoc.done()
    edoc = doc.section("evidence")
    evidence = tuple((key, edoc.optional_number(key)) for key in sorted(edoc.obj))
    edoc.done()
    odoc = doc.optional_section("override")
    doc.done()
    override = None
    if odoc is not None:
        override = GateOverride(
            reason=odoc.string("reason"), by=odoc.string("by"), at=odoc.string("at")
        )
        odoc.done()
    approval = Approval(
        passed=passed,
        criteria=tuple(criteria),
        evidence=evidence,
        policy=policy,
        override=override,
    )
    if approval.status != status:
        raise DataValidationError(
            f"{doc.path}.status is {status!r} but its criteria and override make it "
            f"{approval.status!r}",
            {"field": f"{doc.path}.status"},
        )
    return approval


def _zscore_from(doc: _Fields) -> ZScoreSpec:
    method = doc.choice("method", ZSCORE_METHODS)
    window = doc.optional_integer("window")
    halflife = doc.optional_number("halflife")
    span = doc.optional_number("span")
    min_periods = doc.optional_integer("min_periods")
    mean = doc.optional_number("mean")
    std = doc.optional_number("std")
    sdoc = doc.optional_section("state")
    doc.done()
    state = None
    if sdoc is not None:
        state = EwmaState(
            mean=sdoc.number("mean"),
            var=sdoc.number("var"),
            count=sdoc.integer("count"),
            as_of=sdoc.iso_date("as_of"),
        )
        sdoc.done()
    return ZScoreSpec(
        method=method,  # type: ignore[arg-type]
        window=window,
        halflife=halflife,
        span=span,
        min_periods=min_periods,
        mean=mean,
        std=std,
        state=state,
    )


class _Fields:
    """Strict, path-aware reads from one JSON object; errors name the field."""

    def __init__(self, obj: Any, path: str) -> None:
        if not isinstance(obj, dict):
            raise DataValidationError(f"{path} must be a JSON object, got {type(obj).__name__}")
        self.obj: dict[str, Any] = obj
        self.path = path
        self.seen: set[str] = set()

    def _fail(self, key: str, expected: str, value: Any) -> DataValidationError:
        where = f"{self.path}.{key}"
        return DataValidationError(f"{where} must be {expected}, got {value!r}", {"field": where})

    def _get(self, key: str, optional: bool) -> Any:
        self.seen.add(key)
        if key not in self.obj:
            if optional:
                return None
            where = f"{self.path}.{key}"
            raise DataValidationError(f"{where} is missing", {"field": where})
        return self.obj[key]

    def done(self) -> None:
        unknown = sorted(set(self.obj) - self.seen)
        if unknown:
            where = f"{self.path}.{unknown[0]}"
            raise DataValidationError(
                f"{self.path} has unknown field(s): {', '.join(unknown)}", {"field": where}
            )

    def section(self, key: str) -> _Fields:
        return _Fields(self._get(key, False), f"{self.path}.{key}")

    def optional_section(self, key: str) -> _Fields | None:
        value = self._get(key, True)
        return None if value is None else _Fields(value, f"{self.path}.{key}")

    def string(self, key: str) -> str:
        value = self._get(key, False)
        if not isinstance(value, str) or not value:
            raise self._fail(key, "a non-empty string", value)
        return value

    def optional_string(self, key: str) -> str | None:
        value = self._get(key, True)
        return None if value is None else self.string(key)

    def choice(self, key: str, options: tuple[str, ...]) -> str:
        value = self._get(key, False)
        if value not in options:
            raise self._fail(key, f"one of {', '.join(options)}", value)
        return str(value)

    def boolean(self, key: str) -> bool:
        value = self._get(key, False)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false", value)
        return value

    def number(self, key: str) -> float:
        value = self._get(key, False)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._fail(key, "a number", value)
        if not math.isfinite(value):
            raise self._fail(key, "a finite number", value)
        return float(value)

    def optional_number(self, key: str) -> float | None:
        value = self._get(key, True)
        return None if value is None else self.number(key)

    def integer(self, key: str) -> int:
        value = self._get(key, False)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(key, "an integer", value)
        return value

    def optional_integer(self, key: str) -> int | None:
        value = self._get(key, True)
        return None if value is None else self.integer(key)

    def iso_date(self, key: str) -> str:
        value = self.string(key)
        try:
            date.fromisoformat(value)
        except ValueError:
            raise self._fail(key, "an ISO date (YYYY-MM-DD)", value) from None
        return value

    def number_list(self, key: str, integers: bool = False) -> list[float]:
        value = self._get(key, False)
        kinds = (int,) if integers else (int, float)
        if not isinstance(value, list) or any(
            isinstance(v, bool) or not isinstance(v, kinds) or not math.isfinite(v) for v in value
        ):
            raise self._fail(key, "a list of " + ("integers" if integers else "numbers"), value)
        return [float(v) for v in value]

    def object_list(self, key: str) -> list[Any]:
        value = self._get(key, False)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self._fail(key, "a list of objects", value)
        return value

    def matrix(self, key: str) -> list[list[float]]:
        value = self._get(key, False)
        if not isinstance(value, list) or not all(
            isinstance(row, list)
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in row)
            for row in value
        ):
            raise self._fail(key, "a list of lists of numbers", value)
        return [[float(v) for v in row] for row in value]
