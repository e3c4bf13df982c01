"""Training in its own processes: ``accelerate launch`` runs `finetune.train_adapter` away from the app.

A crash or an out-of-memory kill inside training then ends the run with a message, and the app keeps serving.
``RAGFT_TRAIN_PROCESSES=N`` trains with N data-parallel processes (gloo on CPUs, NCCL on GPUs): each takes its
share of every batch, so N processes train the same steps on the same batches as one. ``RAGFT_TRAIN_PROCESSES=0``
trains on a thread of the app's own process instead (`backend.ThreadRun`): no process to start (it imports torch and
loads the model again), but nothing stands between a crash in training and the app. The test suite trains so, but
where it tests the processes themselves.

The two sides talk through files in ``<adapters>/.<name>.job/``:

    job.json       what to train (examples, settings, base model), written by the app
    progress.json  step, total, losses, tokens/s, written by the first process after every step
    cancel         created by the app to stop the run (the processes agree on the step, then save)
    train.log      the processes' output, for the error message when they fail

    path = launch_training(generator, examples, out_dir, config, state, cancel, processes=2)
    # what it runs:
    # python -m accelerate.commands.launch --num_processes 2 --multi_gpu ... -m ragft.train_process <job dir>
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from . import cpu_quota
from .adapters import read_run
from .backend import Backend
from .errors import InvalidInputError, RagftError
from .finetune.config import TrainConfig
from .finetune.data import Example
from .finetune.trainer import RunState, train_adapter
from .jobs import pid_alive
from .models import Generator, ModelSource
from .serving.server import free_port

POLL_S = 0.3


class TrainingProcessError(RagftError, RuntimeError):
    """The training processes ended without an adapter; the message says how (killed, an error)."""


def job_dir(out_dir: Path) -> Path:
    return out_dir.parent / f".{out_dir.name}.job"


def launch_command(job: Path, processes: int, cuda: bool) -> list[str]:
    """``accelerate launch`` for ``processes`` data-parallel processes on this machine's CPUs or GPUs."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1", "--num_processes",
           str(processes), "--mixed_precision", "no", "--dynamo_backend", "no"]
    if processes > 1:
        # accelerate's torchrun launcher: on a GPU machine one process per GPU (NCCL); on CPUs the processes join a
        # gloo group (`PartialState(cpu=True)` in `main`). `--cpu --num_processes N` would start one process only:
        # accelerate runs several CPU processes on one machine through mpirun alone.
        cmd += ["--multi_gpu", "--main_process_port", str(free_port())]
    elif not cuda:
        cmd.append("--cpu")
    return [*cmd, "-m", "ragft.train_process", str(job)]


def launch_training(
    generator: Backend,
    examples: list[Example],
    out_dir: Path,
    config: TrainConfig,
    state: RunState,
    cancel: threading.Event | None = None,
    data_summary: dict | None = None,
    trained_on: dict[str, str] | None = None,
    on_step: Callable[[], None] | None = None,
    processes: int = 1,
) -> Path:
    """`finetune.train_adapter` in ``processes`` processes launched by ``accelerate launch``; same arguments and
    result. ``state`` follows their progress; setting ``cancel`` stops them at the next step, saving what was
    learned. Raises `TrainingProcessError` when they fail or are killed; nothing of the run is left then."""
    import torch

    cancel = cancel or threading.Event()
    if processes and config.batch_size % processes:
        raise InvalidInputError(f"batch size {config.batch_size} does not split over {processes} training processes "
                         f"(RAGFT_TRAIN_PROCESSES): use a multiple of {processes}")
    folder = job_dir(out_dir)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "job.json").write_text(json.dumps({
        "examples": [asdict(ex) for ex in examples],
        "config": asdict(config),
        "out_dir": str(out_dir.resolve()),
        "summary": data_summary,
        "trained_on": trained_on,
        "source": asdict(generator.source),
        "cpu_bf16": generator.cpu_bf16,
        "app_pid": os.getpid(),
    }))
    cuda = torch.cuda.is_available()
    generator.check_training(config, len(examples))  # a run the backend cannot run (ZeroGPU: too long) stops here
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    if not cuda:  # the cores split between the processes (more threads than cores only slows each one)
        env["OMP_NUM_THREADS"] = str(max(1, int(os.environ.get("OMP_NUM_THREADS") or cpu_quota()) // max(processes, 1)))
    state.status, state.started = "preparing", time.time()
    state.stage = state.stage or "training"
    # ``accelerate launch`` in child processes, or `main` on a thread here; on ZeroGPU a GPU call of this process
    command = (launch_command(folder, processes, cuda) if processes
               else functools.partial(main, folder, generator.local_model()))
    proc = generator.start_training(folder, config, len(examples), command, env)
    try:
        seen = -1
        while (code := proc.poll()) is None:
            time.sleep(POLL_S)
            if cancel.is_set() and not (folder / "cancel").exists():
                (folder / "cancel").touch()
                state.status = "cancelling"
            seen = _read_progress(folder / "progress.json", state, seen, on_step)
        _read_progress(folder / "progress.json", state, seen, on_step)
        if isinstance(error := getattr(proc, "error", None), RagftError):  # a GPU call refused: its own words
            raise error
        if code != 0 or not out_dir.is_dir():
            raise TrainingProcessError(_failure(folder / "train.log", code))
    except BaseException:
        _stop(proc)
        shutil.rmtree(out_dir.parent / f".{out_dir.name}.partial", ignore_errors=True)
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    run = read_run(out_dir)  # the last step's loss is logged after its report: the record has them all
    if run is None:
        raise TrainingProcessError(f"the training processes ended without a run record in {out_dir}")
    state.status = "cancelled" if run.status == "cancelled" else "done"
    state.step, state.losses = run.steps, list(run.losses)
    generator.trained(state.tokens_per_s)
    return out_dir


def _read_progress(progress: Path, state: RunState, seen: int, on_step: Callable[[], None] | None) -> int:
    """Copy the processes' progress into ``state`` (and call ``on_step``) when it moved on; the step seen."""
    try:
        p = json.loads(progress.read_text())
    except (OSError, ValueError):  # not written yet, or being replaced
        return seen
    if p["step"] == seen:
        return seen
    state.step, state.total, state.tokens_per_s = p["step"], p["total"], p["tokens_per_s"]
    state.losses = [tuple(x) for x in p["losses"]]
    if state.status == "preparing":
        state.status, state.started = "running", time.time() - p["elapsed"]
    state.eta_s = p["elapsed"] / max(state.step, 1) * (state.total - state.step)
    if on_step:
        on_step()
    return p["step"]


def _stop(proc) -> None:
    """End the launcher and its training processes (they share its session), or a GPU call's run."""
    if not isinstance(proc, subprocess.Popen):
        proc.stop()
    elif proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _failure(log: Path, code: int) -> str:
    """Why the training processes failed, in one line: killed (and by what), or their last error."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        text = ""
    if code in (-9, 137) or re.search(r"SIGKILL|Signals\.SIGKILL|exit status -9|exitcode\s*:\s*-9", text):
        return ("the training process was killed (SIGKILL; out of memory is the usual cause): nothing was saved; "
                "try a smaller batch size or sequence length")
    errors = re.findall(r"^(?:[\w.]+(?:Error|Exception)|RuntimeError|ValueError): .+$", text, re.MULTILINE)
    if errors:
        return f"the training process failed: {errors[-1][:500]}"
    return f"the training process ended with exit code {code} and no adapter (see its log)"


# --- the training processes' side ------------------------------------------------------------------------------------
def main(folder: Path, generator: Generator | None = None) -> int:
    """One training process: load the base model, train, report progress (the first process), stop together. Given
    ``generator``, the run trains a copy of its model in this process instead (``RAGFT_TRAIN_PROCESSES=0``, or a
    ZeroGPU call: `ragft.spaces`)."""
    import torch
    from accelerate import PartialState

    from .models import load_generator

    job = json.loads((folder / "job.json").read_text())
    cuda = torch.cuda.is_available()
    ps = PartialState(cpu=not cuda)  # joins the process group (NCCL, or gloo on CPUs) when launched as several
    own = generator is None
    if own and cuda:
        torch.cuda.set_device(ps.local_process_index)  # each process loads onto its own GPU
    if generator is None:
        generator = load_generator(source=ModelSource(**job["source"]),
                                   cpu_precision="bfloat16" if job["cpu_bf16"] else "float32")
    examples = [Example(**{**e, "messages": tuple(e["messages"])}) for e in job["examples"]]
    config = TrainConfig(**{**job["config"], "target_modules": tuple(job["config"]["target_modules"])})
    state, cancel, app_pid = RunState(), threading.Event(), int(job["app_pid"])

    def on_step() -> None:
        # 1: the app asked to cancel; 2: the app is gone. Every process takes the largest, so all stop at one step.
        stop = torch.tensor([2.0 if not pid_alive(app_pid) else 1.0 if (folder / "cancel").exists() else 0.0],
                            device=ps.device)
        if ps.num_processes > 1:
            torch.distributed.all_reduce(stop, op=torch.distributed.ReduceOp.MAX)
        if stop.item() == 2:
            os._exit(3)  # nobody to save for: a restarted app cleans up
        if stop.item() == 1:
            cancel.set()
        if ps.is_main_process:
            tmp = folder / "progress.tmp"
            tmp.write_text(json.dumps({"step": state.step, "total": state.total, "tokens_per_s": state.tokens_per_s,
                                       "losses": state.losses, "elapsed": time.time() - state.started,
                                       "pid": os.getpid()}))
            tmp.replace(folder / "progress.json")

    train_adapter(generator, examples, Path(job["out_dir"]), config, state, cancel, job["summary"],
                  job["trained_on"], on_step, own_model=own)
    ps.wait_for_everyone()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
