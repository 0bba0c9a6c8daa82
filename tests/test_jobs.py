"""Research jobs over real HTTP: submitted to `titan lambdas local`, run by `titan worker`.

A job goes queued -> running -> succeeded with a run record, and a WebSocket subscriber
on ``jobs:<id>`` receives each state; requests are validated against the notebook
catalog before anything is queued; an Idempotency-Key is one job and one message; the
list pages through every job once; workers claim a job atomically, and a worker killed
mid-job (SIGKILL) leaves the job to be retried or failed, never lost. The DynamoDB store
and the SQS queue (with its dead-letter queue) are exercised on the moto server.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import nbformat
import pytest
from fixtures.lambda_world import http_call, lambda_env, serve, token
from websockets.sync.client import connect

from titan_lib.core.jobs.lifecycle import claim_job, finish_job, submit_job
from titan_lib.core.jobs.models import JobRequest
from titan_lib.core.jobs.queue_sqlite import SQLiteQueue
from titan_lib.core.jobs.store_sqlite import SQLiteJobStore

REPO = Path(__file__).resolve().parents[1]
TITAN = str(Path(sys.executable).parent / "titan")
FLAKY_SOURCE = """import os, time
from titan_lib.runner import save_results
if marker and not os.path.exists(marker):
    open(marker, "w").close()
    time.sleep(seconds)
save_results({"marker": marker})"""


def _project(root: Path) -> Path:
    """notebooks/ with the runner's fixture notebook and a notebook that can stall once."""
    (root / "notebooks").mkdir(parents=True)
    (root / "parameters").mkdir()
    shutil.copy(REPO / "tests" / "fixtures" / "notebooks" / "sidecar.ipynb", root / "notebooks")
    (root / "parameters" / "sidecar.yaml").write_text("n: 4\nprofiles:\n  quick: {n: 2}\n")
    flaky = nbformat.v4.new_notebook()
    flaky.metadata["kernelspec"] = {"name": "titan", "display_name": "TITAN", "language": "python"}
    params = nbformat.v4.new_code_cell('marker: str = ""\nseconds: float = 0.0')
    params.metadata["tags"] = ["parameters"]
    flaky.cells = [params, nbformat.v4.new_code_cell(FLAKY_SOURCE)]
    nbformat.write(flaky, root / "notebooks" / "flaky.ipynb")
    return root


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from titan_lib.runner.jobs import write_notebook_catalog

    tmp = tmp_path_factory.mktemp("jobs")
    root = _project(tmp / "project")
    catalog = write_notebook_catalog(tmp / "catalog.json", root)
    store, ledger, queue = tmp / "store", tmp / "ledger.sqlite", tmp / "queue.sqlite"
    env = lambda_env(
        str(store),
        str(ledger),
        TITAN_QUEUE=str(queue),
        TITAN_NOTEBOOK_CATALOG=str(catalog),
    )
    with serve(env) as url:
        yield {"url": url, "root": root, "store": store, "ledger": ledger, "queue": queue}


def _auth(sub: str = "ann", scopes: str = "jobs:write", key: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token(scopes, sub=sub)}"}
    return headers | ({"Idempotency-Key": key} if key else {})


def _worker(world: dict, *args: str, **popen) -> subprocess.Popen:
    env = {
        **os.environ,
        "TITAN_WS_ENDPOINT": world["url"],
        "TITAN_LEDGER": str(world["ledger"]),
        "TITAN_QUEUE": str(world["queue"]),
        "NUMBA_CACHE_DIR": str(REPO / ".cache" / "numba"),
    }
    command = [TITAN, "worker", "--store", str(world["store"]), "--root", str(world["root"])]
    return subprocess.Popen(
        [*command, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen
    )


def _pending_messages(world: dict) -> int:
    queue = SQLiteQueue(world["queue"])
    return int(queue.tables.read().execute("SELECT COUNT(*) FROM queue_messages").fetchone()[0])


def test_a_job_runs_once_with_a_run_record_and_each_state_is_pushed(world) -> None:
    from titan_lib.runner.record import read_record
    from titan_lib.stores import open_store

    url = world["url"]
    body = {"notebook": "sidecar", "parameters": {"x": 2.5}, "profile": "quick"}
    status, headers, job = http_call(f"{url}/jobs", "POST", body, _auth(key="job-key-0001"))
    assert status == 202 and job["status"] == "queued", job
    assert headers["Location"] == f"/jobs/{job['job_id']}"
    # the same key is the same job, queued once; another body under it is refused
    status, headers, again = http_call(f"{url}/jobs", "POST", body, _auth(key="job-key-0001"))
    assert status == 202 and again["job_id"] == job["job_id"]
    assert headers["Idempotent-Replayed"] == "true"
    assert _pending_messages(world) == 1
    other = {**body, "parameters": {"x": 3.0}}
    status, _, refused = http_call(f"{url}/jobs", "POST", other, _auth(key="job-key-0001"))
    assert status == 409 and refused["error"]["code"] == "idempotency_conflict"

    ws_url = url.replace("http://", "ws://") + f"/ws?token={token('jobs:write', sub='ann')}"
    with connect(ws_url, open_timeout=5) as ws:
        ws.send(json.dumps({"action": "subscribe", "channels": [f"jobs:{job['job_id']}"]}))
        assert json.loads(ws.recv(timeout=5))["event"] == "subscribed"
        states = [json.loads(ws.recv(timeout=5))["data"]["status"]]  # the current state
        worker = _worker(world, "--once", "--wait", "5")
        while states[-1] not in ("succeeded", "failed"):
            pushed = json.loads(ws.recv(timeout=120))
            assert pushed["channel"] == f"jobs:{job['job_id']}" and pushed["event"] == "job"
            states.append(pushed["data"]["status"])
        output = worker.communicate(timeout=60)[0].decode()
    assert states == ["queued", "running", "succeeded"], output
    assert worker.returncode == 0, output

    status, _, done = http_call(f"{url}/jobs/{job['job_id']}", headers=_auth())
    assert status == 200 and done["status"] == "succeeded" and done["attempts"] == 1
    assert done["started_at"] <= done["ended_at"] and done["error"] is None
    record = read_record(open_store(str(world["store"])), done["run_id"])
    assert record.status == "succeeded" and record.parent_id == job["job_id"]
    assert record.parameters == {"n": 2, "x": 2.5}  # the profile's n, the request's x
    assert _pending_messages(world) == 0
    # another principal cannot see it
    assert http_call(f"{url}/jobs/{job['job_id']}", headers=_auth("bea"))[0] == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"notebook": "no_such"}, "notebook"),
        ({"notebook": "sidecar", "profile": "huge"}, "profile"),
        ({"notebook": "sidecar", "parameters": {"x": "big"}}, "parameters"),
        ({"notebook": "sidecar", "parameters": {"tags": [1, 2]}}, "parameters"),
        ({"notebook": "sidecar", "parameters": {"y": 1}}, "parameters"),
        ({"notebook": "sidecar", "parameters": {"n": True}}, "parameters"),
        ({"notebook": "../etc/passwd"}, "notebook"),
        ({"notebook": "sidecar", "extra": 1}, None),
    ],
)
def test_bad_requests_are_refused_before_anything_is_queued(world, body, field) -> None:
    before = _pending_messages(world)
    status, _, answer = http_call(f"{world['url']}/jobs", "POST", body, _auth("cid"))
    assert status == 400, answer
    assert set(answer["error"]) == {"code", "message", "details"}
    if field is not None:
        assert answer["error"]["details"]["field"] == field, answer
    assert _pending_messages(world) == before
    assert http_call(f"{world['url']}/jobs", headers=_auth("cid"))[2]["items"] == []


def test_the_list_pages_through_each_of_the_callers_jobs_once(world) -> None:
    url = world["url"]
    made = set()
    for i in range(7):
        body = {"notebook": "sidecar", "parameters": {"n": i}}
        status, _, job = http_call(f"{url}/jobs", "POST", body, _auth("dan"))
        assert status == 202
        made.add(job["job_id"])
    http_call(f"{url}/jobs", "POST", {"notebook": "sidecar"}, _auth("eve"))
    seen, cursor, pages = [], None, 0
    while True:
        query = "?limit=3" + (f"&cursor={cursor}" if cursor else "")
        status, _, page = http_call(f"{url}/jobs{query}", headers=_auth("dan"))
        assert status == 200, page
        seen += [item["job_id"] for item in page["items"]]
        pages += 1
        if "next_cursor" not in page:
            break
        cursor = page["next_cursor"]
    assert pages == 3 and len(seen) == len(set(seen)) == 7 and set(seen) == made
    for bad in ("?limit=0", "?limit=101", "?cursor=!!", "?cursor=abc", "?status=queued"):
        status, _, answer = http_call(f"{url}/jobs{bad}", headers=_auth("dan"))
        assert status == 400 and answer["error"]["code"] in ("bad_request", "invalid_parameter")
    status, _, answer = http_call(f"{url}/jobs", headers=_auth("dan", "signals:read"))
    assert status == 403 and answer["error"]["details"]["required"] == ["jobs:write"]


def test_concurrent_workers_claim_a_job_exactly_once(tmp_path: Path) -> None:
    jobs, queue = SQLiteJobStore(tmp_path / "l.sqlite"), SQLiteQueue(tmp_path / "q.sqlite")
    submitted = [
        submit_job(jobs, queue, "p", f"key-{i:05d}", JobRequest("sidecar", {"n": i}))[0]
        for i in range(12)
    ]
    claimed: Counter[str] = Counter()
    received: Counter[str] = Counter()
    lock = threading.Lock()

    def work(name: str) -> None:
        while (message := queue.receive(0.0, 30.0)) is not None:
            claim = claim_job(jobs, message.job_id, name, time.time(), 30.0, 3)
            with lock:
                received[message.job_id] += 1
                if claim.outcome == "claimed":
                    claimed[message.job_id] += 1
            if claim.outcome == "claimed":
                finished = finish_job(jobs, claim.job, True, "run", None)
                with lock:
                    claimed[f"finished:{finished is not None}"] += 1
                queue.delete(message.receipt)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert claimed.pop("finished:True") == 12 and "finished:False" not in claimed
    assert claimed == received == Counter({job.job_id: 1 for job in submitted})
    for job in submitted:  # a claim on a finished job changes nothing
        assert claim_job(jobs, job.job_id, "late", time.time(), 30.0, 3).outcome == "done"
    assert all(jobs.get_job(j.job_id).status == "succeeded" for j in submitted)


def test_a_lost_job_is_failed_after_its_last_attempt_and_a_stale_worker_cannot_finish(
    tmp_path: Path,
) -> None:
    jobs, queue = SQLiteJobStore(tmp_path / "l.sqlite"), SQLiteQueue(tmp_path / "q.sqlite")
    job, _ = submit_job(jobs, queue, "p", None, JobRequest("sidecar"))
    first = claim_job(jobs, job.job_id, "a", 1000.0, 10.0, 2)
    assert first.outcome == "claimed"
    assert claim_job(jobs, job.job_id, "b", 1005.0, 10.0, 2).outcome == "busy"
    second = claim_job(jobs, job.job_id, "b", 1011.0, 10.0, 2)  # a's lease expired
    assert second.outcome == "claimed" and second.job.attempts == 2
    assert finish_job(jobs, first.job, True, "late", None) is None  # a lost it
    last = claim_job(jobs, job.job_id, "c", 1030.0, 10.0, 2)
    assert last.outcome == "exhausted" and last.job.status == "failed"
    assert "lost 2 time(s)" in last.job.error
    assert jobs.get_job(job.job_id).status == "failed"


def test_a_worker_killed_mid_job_leaves_it_to_the_next_worker(world, tmp_path: Path) -> None:
    from dask.distributed import LocalCluster

    from titan_lib.runner.record import read_record
    from titan_lib.stores import open_store

    # a queue and a ledger of its own, so the workers see this job only
    own = {**world, "ledger": tmp_path / "ledger.sqlite", "queue": tmp_path / "queue.sqlite"}
    jobs, queue = SQLiteJobStore(own["ledger"]), SQLiteQueue(own["queue"])
    marker = tmp_path / "started"
    request = JobRequest("flaky", {"marker": str(marker), "seconds": 600.0})
    job, _ = submit_job(jobs, queue, "fay", None, request)
    # meanwhile, on a queue of its own, a worker whose scheduler is unreachable leaves its
    # job queued and its message visible
    apart = {**world, "ledger": tmp_path / "apart.sqlite", "queue": tmp_path / "apart-q.sqlite"}
    apart_jobs, apart_queue = SQLiteJobStore(apart["ledger"]), SQLiteQueue(apart["queue"])
    waiting, _ = submit_job(apart_jobs, apart_queue, "fay", None, request)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT", "0.2s")  # the child gives up fast
        unreachable = _worker(apart, "--once", "--scheduler", "tcp://127.0.0.1:9")
    first = _worker(own, "--once", "--lease", "3", "--max-attempts", "2", start_new_session=True)
    message = unreachable.communicate(timeout=60)[0].decode()
    assert unreachable.returncode == 1 and "error: could not reach the Dask scheduler" in message
    assert "Traceback" not in message and apart_jobs.get_job(waiting.job_id).status == "queued"
    visible = apart_queue.receive(0.0, 1.0)
    assert visible is not None and visible.job_id == waiting.job_id
    deadline = time.monotonic() + 120
    while not marker.exists():  # the kernel is inside the notebook: kill the worker now
        assert time.monotonic() < deadline and first.poll() is None, first.stdout.read()
        time.sleep(0.1)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    seen = jobs.get_job(job.job_id)
    assert seen.status == "running" and seen.attempts == 1

    # the next worker hands the notebook to a Dask cluster (its worker runs in this process)
    cluster = LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", dashboard_address=":0"
    )
    with cluster:
        retry = ("--once", "--wait", "15", "--lease", "3", "--max-attempts", "2")
        second = _worker(own, *retry, "--scheduler", cluster.scheduler_address)
        output = second.communicate(timeout=120)[0].decode()
    assert second.returncode == 0, output
    done = jobs.get_job(job.job_id)
    assert done.status == "succeeded" and done.attempts == 2, (done, output)
    assert done.run_id and _pending_messages(own) == 0
    record = read_record(open_store(str(own["store"])), done.run_id)
    assert record.status == "succeeded" and record.parent_id == job.job_id


def test_jobs_in_dynamodb_and_the_queue_on_sqs_with_a_dead_letter_queue(
    moto_endpoint: str,
) -> None:
    import boto3

    from titan_lib.core.execution.ledger_dynamodb import DynamoDBLedger
    from titan_lib.core.jobs.queue import MAX_RECEIVES
    from titan_lib.core.jobs.queue_sqs import SQSQueue
    from titan_lib.core.jobs.stores import open_job_store

    table = f"jobs-{time.time_ns()}"
    DynamoDBLedger.create_table(table)
    jobs = open_job_store(f"dynamodb://{table}")
    queue = SQSQueue.create(f"titan-jobs-{time.time_ns()}")
    job, created = submit_job(jobs, queue, "ann", "dyn-key-0001", JobRequest("sidecar", {"n": 1}))
    again, created_again = submit_job(
        jobs, queue, "ann", "dyn-key-0001", JobRequest("sidecar", {"n": 1})
    )
    assert created and not created_again and again.job_id == job.job_id and again.enqueued
    message = queue.receive(1.0, 30.0)
    assert message is not None and message.job_id == job.job_id
    assert queue.receive(0.0, 30.0) is None  # one message: the replay queued nothing

    claim = claim_job(jobs, job.job_id, "w", time.time(), 30.0, 3)
    assert claim.outcome == "claimed"
    assert claim_job(jobs, job.job_id, "v", time.time(), 30.0, 3).outcome == "busy"
    done = finish_job(jobs, claim.job, False, "r1", "boom")
    assert done is not None and jobs.get_job(job.job_id).error == "boom"
    queue.delete(message.receipt)
    for i in range(3):
        submit_job(jobs, queue, "bob", None, JobRequest("sidecar", {"n": i}))
    assert len(jobs.list_jobs("bob", 2)) == 2 and len(jobs.list_jobs("ann", 10)) == 1
    page = jobs.list_jobs("bob", 2)
    rest = jobs.list_jobs("bob", 2, (page[-1].created_at, page[-1].job_id))
    assert len(rest) == 1 and rest[0].job_id not in {j.job_id for j in page}

    # a message never deleted moves to the dead-letter queue after MAX_RECEIVES deliveries
    poison = SQSQueue.create(f"titan-poison-{time.time_ns()}")
    poison.send("job_poison")
    for _ in range(MAX_RECEIVES):
        assert poison.receive(1.0, 0.0) is not None
    assert poison.receive(0.0, 0.0) is None  # visible at once if still there: no wait needed
    sqs = boto3.client("sqs")
    dead = sqs.get_queue_url(QueueName=f"{poison.name}-dlq")["QueueUrl"]
    moved = sqs.receive_message(QueueUrl=dead, WaitTimeSeconds=1).get("Messages", [])
    assert [json.loads(m["Body"])["job_id"] for m in moved] == ["job_poison"]


def test_the_sqlite_queue_dead_letters_a_message_received_too_often(tmp_path: Path) -> None:
    queue = SQLiteQueue(tmp_path / "q.sqlite", max_receives=2)
    queue.send("job_a")
    assert queue.receive(0.0, 0.0).receive_count == 1
    assert queue.receive(0.0, 0.0).receive_count == 2
    assert queue.receive(0.0, 0.0) is None and queue.dead_letters() == ["job_a"]


def test_the_packaged_notebook_catalog_matches_the_notebooks() -> None:
    from titan_lib.runner.jobs import notebook_catalog

    shipped = json.loads((REPO / "lambdas" / "chalicelib" / "notebook_catalog.json").read_text())
    assert shipped == notebook_catalog(REPO), (
        "lambdas/chalicelib/notebook_catalog.json is stale; rewrite it with "
        "titan_lib.runner.jobs.write_notebook_catalog (titan lambdas package does)"
    )


def test_a_worker_fails_a_job_whose_workers_were_lost_too_often(tmp_path: Path) -> None:
    from titan_lib.runner.jobs import JobWorker, WorkerSettings

    jobs, queue = SQLiteJobStore(tmp_path / "ledger.sqlite"), SQLiteQueue(tmp_path / "q.sqlite")
    job, _ = submit_job(jobs, queue, "hal", None, JobRequest("sidecar"))
    # a worker claimed it and vanished: its lease ran out long ago
    assert claim_job(jobs, job.job_id, "gone", time.time() - 100, 1.0, 2).outcome == "claimed"
    lines: list[str] = []
    settings = WorkerSettings(root=tmp_path, max_attempts=1, wait_seconds=0.0)
    done = JobWorker(jobs, queue, None, None, settings, lines.append).poll()
    assert done is not None and done.status == "failed" and "lost 1 time(s)" in done.error
    assert jobs.get_job(job.job_id).status == "failed"
    assert queue.receive(0.0, 1.0) is None  # the message is gone: nothing runs it again
    assert any("failed" in line for line in lines)


def test_titan_token_issue_mints_the_jobs_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    from fixtures.lambda_world import SECRET

    from titan_lib.cli.token import issue_token
    from titan_lib.core.auth import AuthSettings, verify_token

    monkeypatch.setenv("TITAN_JWT_SECRET", SECRET)
    principal = verify_token(issue_token(["jobs:write"], 600, "ivy"), AuthSettings.from_env())
    assert principal.subject == "ivy" and principal.has("jobs:write")
