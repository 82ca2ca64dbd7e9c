import os
import subprocess
import sys

import pytest

from core.cluster.cli import format_status
from core.cluster.lock import AlreadyRunningError, ServeLock, lock_holder
from core.cluster.state import read_cluster_json, write_cluster_json


def test_cluster_json_roundtrip_atomic(tmp_path):
    assert read_cluster_json(tmp_path) is None
    doc = {"brokers": [{"id": 1, "host": "127.0.0.1", "port": 1, "pid": 2,
                        "metrics_port": 3, "state": "running"}], "controller_id": 1}
    write_cluster_json(tmp_path, doc)
    write_cluster_json(tmp_path, doc)
    assert read_cluster_json(tmp_path) == doc
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster.json"]


def test_cluster_json_unreadable_is_none(tmp_path):
    (tmp_path / "cluster.json").write_text("{not json")
    assert read_cluster_json(tmp_path) is None


def test_lock_refuses_second_holder_and_keeps_file(tmp_path):
    first = ServeLock(tmp_path)
    first.acquire()
    try:
        content = (tmp_path / "serve.lock").read_text()
        assert content.strip() == str(os.getpid())
        with pytest.raises(AlreadyRunningError) as info:
            ServeLock(tmp_path).acquire()
        assert info.value.pid == os.getpid()
        assert "already running" in str(info.value)
        assert (tmp_path / "serve.lock").read_text() == content
        assert lock_holder(tmp_path) == os.getpid()
    finally:
        first.release()
    assert lock_holder(tmp_path) is None
    with ServeLock(tmp_path):
        assert lock_holder(tmp_path) == os.getpid()


def test_lock_held_by_another_process(tmp_path):
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[2]);"
        "from core.cluster.lock import ServeLock; l = ServeLock(sys.argv[1]); l.acquire();"
        "print('locked', flush=True); time.sleep(30)"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path), root],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(AlreadyRunningError) as info:
            ServeLock(tmp_path).acquire()
        assert info.value.pid == proc.pid
    finally:
        proc.kill()
        proc.wait(5)
    with ServeLock(tmp_path):  # the kernel dropped the dead holder's lock
        pass


def test_format_status():
    text = format_status({"controller_id": 2, "bootstrap": "b", "brokers": [
        {"id": 1, "host": "127.0.0.1", "port": 9092, "pid": 10, "state": "running"},
        {"id": 2, "host": "127.0.0.1", "port": 9093, "pid": None, "state": "killed"},
    ]})
    lines = text.splitlines()
    assert lines[0].split() == ["ID", "ADDRESS", "STATE", "PID", "CONTROLLER"]
    assert lines[1].split() == ["1", "127.0.0.1:9092", "running", "10"]
    assert lines[2].split() == ["2", "127.0.0.1:9093", "killed", "-", "*"]
    assert "controller: 2" in lines[3]
