"""The publish gate: every criterion named, refusal, overrides on the record, every path."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from test_signal_model import make_model, run_cli

from titan_lib.backtest.publish_gate import (
    CandidateEvidence,
    PublishPolicy,
    PublishRefusedError,
    approve,
    evaluate_candidate,
    publish_approved,
    recorded_evidence,
)
from titan_lib.core.model_registry import get_model, list_model_ids
from titan_lib.core.signal_model import SignalModel
from titan_lib.exceptions import DataValidationError, ParameterError

GOOD = CandidateEvidence(
    qvalue=0.01,
    hedge_ratio=0.9,
    half_life=12.0,
    stability=0.75,
    oos_sharpe=0.8,
    is_sharpe=1.2,
    oos_mean_sharpe=0.9,
    deflated_sharpe=0.97,
    pbo=0.2,
    has_gate=True,
    gate_sharpe_with=0.8,
    gate_sharpe_without=0.6,
)
NAMES = [
    "qvalue",
    "hedge_ratio",
    "half_life",
    "stability",
    "oos_sharpe",
    "degradation",
    "deflated_sharpe",
    "pbo",
    "regime_gate",
]


def test_a_sound_candidate_passes_with_every_criterion_named() -> None:
    verdict = evaluate_candidate(GOOD)
    assert verdict.passed and verdict.status == "passed" and verdict.failed == ()
    assert [c.name for c in verdict.criteria] == NAMES
    by_name = {c.name: c for c in verdict.criteria}
    assert by_name["qvalue"].value == 0.01 and by_name["qvalue"].threshold == "<= 0.05"
    assert by_name["half_life"].threshold == "1 .. 60"
    assert by_name["degradation"].value == pytest.approx(0.9 / 1.2)
    assert by_name["regime_gate"].value == pytest.approx(0.2)
    assert by_name["deflated_sharpe"].threshold == ">= 0.95"
    assert by_name["pbo"].threshold == "<= 0.5"
    assert dict(verdict.evidence)["qvalue"] == 0.01


@pytest.mark.parametrize(
    ("change", "failed"),
    [
        ({"qvalue": 0.157}, "qvalue"),
        ({"hedge_ratio": -0.4}, "hedge_ratio"),
        ({"hedge_ratio": 0.0}, "hedge_ratio"),
        ({"half_life": 0.5}, "half_life"),
        ({"half_life": 90.0}, "half_life"),
        ({"stability": 0.25}, "stability"),
        ({"oos_sharpe": -0.63}, "oos_sharpe"),
        ({"oos_mean_sharpe": 0.3}, "degradation"),
        ({"is_sharpe": -0.2}, "degradation"),
        ({"deflated_sharpe": 0.5}, "deflated_sharpe"),
        ({"pbo": 0.7}, "pbo"),
        ({"gate_sharpe_with": 0.5}, "regime_gate"),
        ({"gate_sharpe_with": None}, "regime_gate"),
        ({"pbo": None}, "pbo"),
        ({"stability": float("nan")}, "stability"),
    ],
)
def test_each_failing_criterion_is_named(change, failed) -> None:
    verdict = evaluate_candidate(replace(GOOD, **change))
    assert not verdict.passed and [c.name for c in verdict.failed] == [failed]
    assert failed in verdict.describe()


def test_no_gate_needs_no_gate_evidence_and_policy_is_frozen() -> None:
    verdict = evaluate_candidate(replace(GOOD, has_gate=False, gate_sharpe_with=None))
    assert verdict.passed
    strict = PublishPolicy(max_qvalue=0.005)
    assert [c.name for c in evaluate_candidate(GOOD, strict).failed] == ["qvalue"]
    with pytest.raises(AttributeError):
        strict.max_qvalue = 0.5  # type: ignore[misc]
    with pytest.raises(ParameterError, match="max_pbo"):
        PublishPolicy(max_pbo=2.0)
    with pytest.raises(ParameterError, match="half-life range"):
        PublishPolicy(min_half_life=70.0)
    empty = evaluate_candidate(CandidateEvidence())
    assert {c.name for c in empty.failed} == set(NAMES) - {"regime_gate"}


def test_refusal_names_the_failures_and_override_is_recorded() -> None:
    verdict = evaluate_candidate(replace(GOOD, qvalue=0.157, oos_sharpe=-0.63))
    with pytest.raises(PublishRefusedError, match=r"qvalue 0\.157 \(needs <= 0\.05\)") as refused:
        approve(verdict)
    assert refused.value.details["failed"] == ["qvalue", "oos_sharpe"]
    assert refused.value.to_dict()["code"] == "publish_refused"
    with pytest.raises(PublishRefusedError):
        approve(verdict, "   ")
    approval = approve(verdict, "research demo", by="ana")
    assert approval.status == "override" and not approval.passed
    assert approval.override is not None and approval.override.by == "ana"
    assert approval.override.reason == "research demo" and approval.override.at
    assert "Published under an override by ana" in approval.describe()
    assert approve(evaluate_candidate(GOOD), "ignored").override is None


def test_publish_refuses_before_writing_and_records_override(local_store) -> None:
    model = make_model()
    bad = replace(GOOD, qvalue=0.157)
    with pytest.raises(PublishRefusedError):
        publish_approved(model, bad, store=local_store)
    assert list_model_ids(local_store, include_retired=True) == []
    result, approval = publish_approved(model, bad, override_reason="demo", store=local_store)
    stored = get_model(result.model_id, local_store)
    assert stored.approval == approval and stored.approval.status == "override"
    assert stored.approval.override is not None and stored.approval.override.reason == "demo"
    assert [c.name for c in stored.approval.failed] == ["qvalue"]
    assert result.model_id != model.model_id  # the evidence is part of the content
    again, _ = publish_approved(model, bad, override_reason="demo again", store=local_store)
    assert again.model_id == result.model_id and not again.created  # override is not
    good, passed = publish_approved(model, GOOD, store=local_store)
    assert passed.passed and get_model(good.model_id, local_store).approval == passed


def test_approval_keeps_old_ids_and_detects_altered_evidence() -> None:
    model = make_model()
    doc = json.loads(model.to_json())
    assert "approval" not in doc and SignalModel.from_json(model.to_json()) == model
    approved = replace(model, approval=approve(evaluate_candidate(GOOD)))
    text = approved.to_json()
    back = SignalModel.from_json(text)
    assert back == approved and back.model_id == approved.model_id != model.model_id
    altered = json.loads(text)
    altered["approval"]["evidence"]["qvalue"] = 0.001
    with pytest.raises(DataValidationError, match="does not match its content"):
        SignalModel.from_json(json.dumps(altered))
    lying = json.loads(text)
    lying["approval"]["status"] = "override"
    with pytest.raises(DataValidationError, match=r"approval\.status"):
        SignalModel.from_json(json.dumps(lying))
    assert recorded_evidence(back) == GOOD
    assert recorded_evidence(replace(back, gate=None)).has_gate is False


def test_cli_publish_runs_the_gate(local_store, tmp_path: Path, capsys) -> None:
    model = make_model()
    path = tmp_path / "model.json"
    path.write_text(model.to_json())
    assert run_cli(["models", "publish", str(path), "--store", local_store]) == 1
    err = capsys.readouterr().err
    assert "fails the publish gate" in err and "qvalue no evidence (needs <= 0.05)" in err
    assert list_model_ids(local_store, include_retired=True) == []
    args = ["models", "publish", str(path), "--override", "manual research model"]
    assert run_cli([*args, "--store", local_store]) == 0
    out = capsys.readouterr().out
    (model_id,) = list_model_ids(local_store)
    assert f"published: {model_id}" in out and "OVERRIDE" in out
    assert run_cli(["models", "show", model_id, "--store", local_store]) == 0
    shown = capsys.readouterr().out
    assert "approval: OVERRIDE" in shown and "manual research model" in shown
    assert "FAIL  qvalue no evidence" in shown
    assert run_cli(["models", "list", "--store", local_store]) == 0
    assert "OVERRIDE" in capsys.readouterr().out
    approved = replace(model, approval=approve(evaluate_candidate(GOOD)))
    path.write_text(approved.to_json())
    assert run_cli(["models", "publish", str(path), "--store", local_store]) == 0
    assert f"published: {approved.model_id}" in capsys.readouterr().out
    assert run_cli(["models", "show", approved.model_id, "--store", local_store]) == 0
    assert "approval: PASSED" in capsys.readouterr().out


def test_dashboards_label_the_verdict_and_the_sample() -> None:
    from titan_lib.dashboards.backtest_data import run_sample
    from titan_lib.dashboards.live_data import approval_label

    model = make_model()
    assert approval_label(model) == "none recorded"
    assert approval_label(replace(model, approval=evaluate_candidate(GOOD))) == "passed"
    failing = approve(evaluate_candidate(replace(GOOD, pbo=0.9)), "demo only", by="ana")
    assert approval_label(replace(model, approval=failing)) == "OVERRIDE: demo only"
    assert run_sample({"sample": "out-of-sample"}) == "out-of-sample"
    assert run_sample({}) == "in-sample" and run_sample({"sample": "whatever"}) == "in-sample"


def test_publication_plan_publishes_only_what_passes_unless_overridden() -> None:
    from titan_lib.backtest.publish_gate import plan_publication

    ranked = [False, True, False, True, True]
    plan = plan_publication(ranked, n_models=2)
    assert plan.passing == (1, 3, 4)
    assert plan.chosen == (1, 3)
    assert plan.overridden == ()
    # an override never adds failing candidates when some pass
    assert plan_publication(ranked, n_models=2, override_reason="why").chosen == (1, 3)

    none_pass = [False, False, False]
    assert plan_publication(none_pass).chosen == ()
    assert plan_publication(none_pass, override_reason="  ").chosen == ()
    plan = plan_publication(none_pass, override_reason="demo on sample data")
    assert plan.chosen == (0,)
    assert plan.overridden == (0,)

    named = plan_publication([True, False, True], named=True)
    assert named.chosen == (0, 2)
    named = plan_publication([True, False, True], named=True, override_reason="keep B")
    assert named.chosen == (0, 2, 1)
    assert named.overridden == (1,)

    with pytest.raises(ParameterError):
        plan_publication(ranked, n_models=0)
