"""Training in its own processes (`ragft.train_process`): launched by ``accelerate launch``, followed through its
progress file, two data-parallel CPU processes (gloo) giving an adapter that answers like a one-process one, and a
training process killed mid-run ending the job with a clear message while the app keeps serving."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from ragft.chat import build_messages
from ragft.finetune import DataSpec, RunState, TrainConfig, qa_examples
from ragft.generation import DecodeSettings, generate_batch
from ragft.train_process import _failure, launch_command, launch_training

from .conftest import MEMO_QA


def test_the_command_is_accelerate_launch_with_one_or_several_processes(tmp_path):
    one = launch_command(tmp_path, 1, cuda=False)
    assert one[1:3] == ["-m", "accelerate.commands.launch"] and "--cpu" in one and "--multi_gpu" not in one
    assert one[-3:] == ["-m", "ragft.train_process", str(tmp_path)]
    two = launch_command(tmp_path, 2, cuda=False)  # torchrun's launcher: on CPUs the processes join a gloo group
    assert two[two.index("--num_processes") + 1] == "2" and "--multi_gpu" in two and "--cpu" not in two
    assert "--multi_gpu" in launch_command(tmp_path, 4, cuda=True)


def test_a_failed_run_is_said_in_one_line(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("Traceback (most recent call last):\n  ...\nValueError: sequence length must be 32..8192\n")
    assert _failure(log, 1) == "the training process failed: ValueError: sequence length must be 32..8192"
    log.write_text("torch.distributed.elastic...: exitcode  : -9 (pid: 123)\nSignal 9 (SIGKILL) received by PID 123\n")
    assert _failure(log, 1).startswith("the training process was killed (SIGKILL; out of memory")
    log.write_text("")
    assert "exit code 2" in _failure(log, 2)


def test_a_batch_that_does_not_split_over_the_processes_is_refused_before_launching(tmp_path, generator):
    with pytest.raises(ValueError, match="batch size 3 does not split over 2 training processes"):
        launch_training(generator, qa_examples(MEMO_QA), tmp_path / "x", TrainConfig(batch_size=3), RunState(),
                        processes=2)
    assert list(tmp_path.iterdir()) == []


def test_a_run_on_a_thread_ends_like_a_process_with_its_error_in_the_log(tmp_path):
    from ragft.backend import ThreadRun

    def fail():
        raise ValueError("sequence length must be 32..8192")

    run = ThreadRun(tmp_path, fail)
    run._thread.join(10)
    assert run.poll() == 1 and isinstance(run.error, ValueError)
    assert _failure(tmp_path / "train.log", 1) == "the training process failed: ValueError: sequence length must be " \
                                                  "32..8192"
    done = ThreadRun(tmp_path, lambda: 0)
    done.stop()  # asks it to stop (the cancel file a run reads at each step), then waits
    assert done.poll() == 0 and (tmp_path / "cancel").exists()


def _answers(generator, adapter: Path, name: str) -> list[str]:
    generator.ensure_adapter(name, adapter)
    try:
        conversations = [build_messages(qa["question"]) for qa in MEMO_QA]
        return generate_batch(generator, conversations, [name] * len(MEMO_QA), DecodeSettings(32))
    finally:
        generator.unload_adapter(name)


def _trainers(job: Path) -> set[int]:
    """The pids of the training processes working on ``job`` (``-m ragft.train_process <job>``, not their launcher's
    ``-m accelerate.commands.launch ...``), from /proc."""
    found = set()
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0") if proc.name.isdigit() else []
        except OSError:  # ended meanwhile
            continue
        if b"ragft.train_process" in argv and str(job).encode() in argv and b"accelerate.commands.launch" not in argv:
            found.add(int(proc.name))
    return found


@pytest.mark.slow
def test_two_data_parallel_cpu_processes_train_an_adapter_that_answers_like_one_process(tmp_path, generator,
                                                                                         memorized_adapter):
    """Two processes train the pairs the session's one-process adapter (`memorized_adapter`) learned; both answer
    them."""
    state, steps, seen = RunState(), [], set()

    def on_step() -> None:
        steps.append(state.step)
        seen.update(_trainers(tmp_path / ".memo2.job"))

    two = launch_training(generator, qa_examples(MEMO_QA), tmp_path / "memo2", TrainConfig(max_steps=20, batch_size=4),
                          state, on_step=on_step, processes=2)
    assert state.status == "done" and state.step == state.total == 20 and len(state.losses) == 20
    assert steps and steps == sorted(steps) and steps[-1] >= 19  # followed live, step by step
    assert len(seen) == 2  # really two processes, each on its half of every batch
    assert [p.name for p in tmp_path.iterdir()] == ["memo2"]  # no job folder left
    assert state.losses[-1][1] < 0.05  # together they learned the pairs
    one, two_ = _answers(generator, memorized_adapter, "one"), _answers(generator, two, "two")
    for qa, a1, a2 in zip(MEMO_QA, one, two_):
        key = qa["answer"].split(" is ")[-1].rstrip(".")  # "7-4-1-9", "a robot named Pim", "bright teal"
        assert key in a1 and key in a2, (qa, a1, a2)


@pytest.mark.slow
@pytest.mark.train_processes
def test_a_killed_training_process_fails_the_job_and_the_app_keeps_serving(engine, tmp_path):
    qa = tmp_path / "qa.jsonl"
    qa.write_text("\n".join(json.dumps(r) for r in MEMO_QA))
    name = engine.start_training(DataSpec("qa", qa), TrainConfig(max_steps=300, batch_size=1), "doomed")
    deadline = time.time() + 300
    progress = None
    while time.time() < deadline and progress is None:
        found = list(engine.settings.adapters_dir.glob(".*.job/progress.json"))
        progress = json.loads(found[0].read_text()) if found else None
        time.sleep(0.3)
    assert progress and engine.jobs.state.status == "running"
    os.kill(progress["pid"], signal.SIGKILL)  # as the kernel's out-of-memory killer would

    state = engine.jobs.wait(120)
    assert state.status == "failed" and "was killed (SIGKILL; out of memory" in state.message
    assert engine.adapters() == [] and list(engine.settings.adapters_dir.iterdir()) == []  # nothing half-saved
    assert name.startswith("doomed")
    # the app (this process) is unharmed: it answers, and the next run starts
    assert generate_batch(engine.generator, [build_messages("Say hi.")], ["__base__"], DecodeSettings(4))[0]
    engine.start_training(DataSpec("qa", qa), TrainConfig(max_steps=1, batch_size=1), "after")
    assert engine.jobs.wait(300).status == "done" and engine.adapters() == ["after-v1"]
