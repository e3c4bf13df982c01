"""The background job runner, on fake jobs (no models): start, result, busy, cancel, failure, wait."""

from __future__ import annotations

import threading

import pytest

from ragft.jobs import JobBusyError, JobRunner, JobState


def gated(result=None):
    """A fake job that reports one step, then waits for ``go`` (or cancel) before returning ``result``."""
    go = threading.Event()

    def work(state: JobState, cancel: threading.Event):
        state.status, state.total, state.step, state.stage = "running", 2, 1, "counting"
        while not (go.is_set() or cancel.is_set()):
            go.wait(0.01)
        if not cancel.is_set():
            state.step = 2
        return result

    return work, go


def test_a_job_runs_in_the_background_and_keeps_its_result():
    runner = JobRunner()
    assert runner.state.status == "idle" and not runner.state.active and runner.latest("evaluate") is None
    work, go = gated(result={"score": 1.0})
    state = runner.start("evaluate", "facts", work, "starting")
    assert (state.kind, state.name, state.message) == ("evaluate", "facts", "starting")
    assert state.active and state.started > 0 and runner.state is state and runner.latest("evaluate") is state
    go.set()
    assert runner.wait(5) is state
    assert (state.status, state.step, state.total, state.stage, state.result) == ("done", 2, 2, "counting",
                                                                                 {"score": 1.0})
    assert not state.active and state.eta_s is None


def test_the_result_written_on_the_way_stays_when_work_returns_none():
    def work(state, cancel):
        state.result = "partial"

    runner = JobRunner()
    assert runner.wait() is runner.state  # nothing started: returns at once
    runner.start("train", "a-v1", work)
    assert runner.wait(5).result == "partial" and runner.state.status == "done"


@pytest.mark.parametrize("kind, name, running", [
    ("train", "memo-v2", "a training run (memo-v2)"),
    ("evaluate", "facts-test", "an evaluation (facts-test)"),
    ("experiment", "handbook", "an experiment (handbook)"),
    ("evaluate", "", "an evaluation"),
])
def test_one_job_at_a_time_and_the_busy_message_names_the_running_one(kind, name, running):
    runner = JobRunner()
    work, go = gated()
    first = runner.start(kind, name, work)
    with pytest.raises(JobBusyError) as err:
        runner.start("train", "other-v1", gated()[0])
    assert str(err.value) == f"{running} is already going: wait for it or cancel it first"
    with pytest.raises(JobBusyError):
        runner.check_idle()
    assert runner.state is first  # the refused start changed nothing
    go.set()
    runner.wait(5)
    runner.check_idle()
    second = runner.start("train", "other-v1", lambda state, cancel: "ok")
    assert runner.wait(5).result == "ok" and runner.state is second
    assert runner.latest(kind) is (second if kind == "train" else first)  # each kind's newest job stays readable


def test_cancel_stops_the_job_and_ends_it_cancelled():
    runner = JobRunner()
    work, _ = gated(result="so far")
    state = runner.start("evaluate", "facts", work)
    assert not runner.cancel("train")  # only a job of the kind asked for
    assert runner.cancel()
    assert state.status in ("cancelling", "cancelled")
    assert runner.wait(5).status == "cancelled"
    assert (state.step, state.result) == (1, "so far")  # the work saw the event before its second step
    assert not runner.cancel()  # nothing left to cancel


def test_work_may_set_its_final_status_itself():
    def work(state, cancel):
        state.status = "cancelled"  # e.g. training stopped by its own limit and saved what it had

    runner = JobRunner()
    runner.start("train", "a-v1", work)
    assert runner.wait(5).status == "cancelled"


def test_an_exception_ends_the_job_failed_with_a_message(caplog):
    def work(state, cancel):
        state.status = "running"
        raise RuntimeError("out of memory")

    runner = JobRunner()
    runner.start("experiment", "handbook", work)
    state = runner.wait(5)
    assert (state.status, state.message) == ("failed", "experiment failed: out of memory")
    assert "Traceback" in caplog.text and "out of memory" in caplog.text  # logged for the operator
    runner.start("evaluate", "facts", lambda state, cancel: None)  # a failed job does not block the next
    assert runner.wait(5).status == "done"


def test_wait_with_a_timeout_returns_the_running_state():
    runner = JobRunner()
    work, go = gated()
    runner.start("train", "a-v1", work)
    assert runner.wait(0.05).active
    go.set()
    assert runner.wait(5).status == "done"


# --- a process that dies during a job ---------------------------------------------------------------------------


def test_the_record_names_the_running_job_and_goes_when_it_ends(tmp_path):
    import json
    import os

    record = tmp_path / "jobs" / "running.json"
    runner = JobRunner(record)
    seen = {}

    def work(state, cancel):
        seen.update(json.loads(record.read_text()))

    runner.start("train", "memo-v1", work)
    runner.wait()
    assert seen["kind"] == "train" and seen["name"] == "memo-v1" and seen["pid"] == os.getpid()
    assert not record.exists()


def test_a_record_left_by_a_dead_process_shows_the_job_interrupted(tmp_path):
    import json
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=False)
    record = tmp_path / "running.json"
    record.write_text(json.dumps({"kind": "train", "name": "memo-v2", "started": 1_700_000_000,
                                  "pid": int(dead.stdout)}))
    runner = JobRunner(record)
    assert runner.state.status == "interrupted" and not runner.state.active
    assert runner.latest("train") is runner.state
    assert runner.state.message.startswith("a training run (memo-v2) started 2023-11-")
    assert "was interrupted: the app stopped while it ran" in runner.state.message
    assert not record.exists()
    runner.start("evaluate", "set", lambda state, cancel: None)  # and the next job starts normally
    assert runner.wait().status == "done"


def test_a_record_of_a_live_process_is_left_alone(tmp_path):
    import json
    import os

    record = tmp_path / "running.json"
    record.write_text(json.dumps({"kind": "train", "name": "x", "started": 1.0, "pid": os.getpid()}))
    assert JobRunner(record).state.status == "idle" and record.exists()  # e.g. the CLI beside a running app
