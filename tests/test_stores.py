"""Object stores: the same contract on a local folder and on S3 (moto server)."""

from __future__ import annotations

import threading

import pytest

from titan_lib.exceptions import ConflictError, NotFoundError, StoreError
from titan_lib.stores import open_store, read_json, write_json


def test_read_write_list_delete(any_store: str) -> None:
    store = open_store(any_store)
    assert store.list() == []
    store.write_bytes("a/b/c.txt", b"one")
    write_json(store, "a/x.json", {"k": [1, 2]})
    assert store.read_bytes("a/b/c.txt") == b"one"
    assert read_json(store, "a/x.json") == {"k": [1, 2]}
    assert store.list("a") == ["a/b/c.txt", "a/x.json"]
    assert store.list("a/b") == ["a/b/c.txt"]
    assert store.list("a/b/c") == [] or store.list("a/b/c") == ["a/b/c.txt"]
    assert store.exists("a/x.json") and not store.exists("a/nothing")
    store.delete("a/x.json")
    store.delete("a/x.json")
    assert not store.exists("a/x.json")
    with pytest.raises(NotFoundError, match=r"a/x\.json not found"):
        store.read_bytes("a/x.json")


def test_put_if_absent_never_overwrites(any_store: str) -> None:
    store = open_store(any_store)
    assert store.put_if_absent("models/m.json", b"first") is True
    assert store.put_if_absent("models/m.json", b"second") is False
    assert store.read_bytes("models/m.json") == b"first"


def test_write_if_match_is_compare_and_swap(any_store: str) -> None:
    store = open_store(any_store)
    store.write_if_match("ptr.json", b"v1", None)
    with pytest.raises(ConflictError):
        store.write_if_match("ptr.json", b"v1-again", None)
    found = store.read_versioned("ptr.json")
    assert found is not None
    data, token = found
    assert data == b"v1"
    store.write_if_match("ptr.json", b"v2", token)
    with pytest.raises(ConflictError, match="changed"):
        store.write_if_match("ptr.json", b"v3", token)
    assert store.read_bytes("ptr.json") == b"v2"


def test_concurrent_create_only_has_one_winner(any_store: str) -> None:
    store = open_store(any_store)
    wins: list[bool] = []
    lock = threading.Lock()

    def attempt(i: int) -> None:
        ok = store.put_if_absent("race.json", f"{i}".encode())
        with lock:
            wins.append(ok)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1 and len(wins) == 12


def test_bad_keys_and_uris(local_store: str) -> None:
    store = open_store(local_store)
    with pytest.raises(StoreError, match="invalid store key"):
        store.write_bytes("../escape", b"x")
    with pytest.raises(StoreError, match="no bucket"):
        open_store("s3://")


def test_missing_bucket_is_a_clear_error(moto_endpoint: str) -> None:
    store = open_store("s3://no-such-bucket-titan/prefix")
    with pytest.raises(StoreError, match="bucket 'no-such-bucket-titan' does not exist"):
        store.read_bytes("x.json")


def test_temp_files_of_a_killed_write_are_ignored_then_swept(local_store: str) -> None:
    """A writer killed (SIGKILL) between the temp write and the rename leaves a hidden
    temp file: it is never listed or read as an object, and the first write of a store
    opened later deletes it once it is older than any live write."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from titan_lib.stores.local import ORPHAN_AGE_SECONDS, LocalObjectStore

    open_store(local_store).write_bytes("models/a.json", b"old")
    code = (
        "import os, time\n"
        "from titan_lib.stores.local import LocalObjectStore\n"
        "os.replace = lambda *a: time.sleep(600)\n"
        f"LocalObjectStore({local_store!r}).write_bytes('models/a.json', b'new')\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code])
    folder = Path(local_store) / "models"
    deadline = time.monotonic() + 30
    while not list(folder.glob(".a.json.*.tmp")):
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    (orphan,) = folder.glob(".a.json.*.tmp")
    old = time.time() - ORPHAN_AGE_SECONDS - 60
    os.utime(orphan, (old, old))
    live = folder / ".b.json.live.tmp"  # a concurrent writer's file, seconds old
    live.write_bytes(b"in flight")

    store = LocalObjectStore(local_store)
    assert store.list("models") == ["models/a.json"] and store.read_bytes("models/a.json") == b"old"
    store.write_bytes("models/c.json", b"c")
    assert not orphan.exists() and live.exists()
    assert store.list("") == ["models/a.json", "models/c.json"]
