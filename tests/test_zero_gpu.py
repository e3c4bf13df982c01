"""ZeroGPU wiring (`ragft.spaces`): every piece of model work runs in an entry point, each with a duration bound.

ZeroGPU itself cannot start on this machine: ``import spaces`` with ``SPACES_ZERO_GPU`` set needs a CUDA build of
torch (``spaces/zero/torch/static.py`` reads ``torch.version.cuda``). So the decorator here does what
``spaces.GPU`` does around a call, minus the GPU: it computes the call's duration from its arguments (recorded and
checked against ZeroGPU's limit), forks a worker process, pickles the arguments to it and the results back. The
app's process never runs the model: a hook on it fails any forward pass outside a worker."""

from __future__ import annotations

import contextvars
import faulthandler
import inspect
import multiprocessing
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

import pytest

from ragft import gpu_calls, spaces
from ragft.backend import BASE
from ragft.engine import Engine
from ragft.errors import InvalidInputError, RagftError
from ragft.finetune import DataSpec, TrainConfig
from ragft.generation import (
    DecodeSettings,
    generate_batch,
    option_logprobs,
    prompt_tokens,
)
from ragft.gpu_calls import GpuRefusedError
from ragft.spaces import GpuRates, ZeroGpuGenerator

IN_WORKER = False  # set in the forked workers only
CALLS: list[tuple[str, int]] = []  # (entry point, duration asked for), in call order
REQUESTS: list = []  # the Gradio request each call would be scheduled for (whose quota pays)

NOTE = ("The Kestrel lighthouse was built in 1872 by the engineer Ada Fenwick. It stands 41 metres tall and its "
        "keeper in 1901 was Tobias Marr.")


WORKER_STUCK_S = 300  # a worker that has not answered by then prints every thread's stack and exits


def _child(fn, args, kwargs, queue) -> None:
    """A forked worker, as ``spaces`` runs one (``spaces/zero/wrappers.py``, ``thread_wrapper``): the task on a new
    thread of the fork, never on the thread that forked (whose OpenMP team, if it had one, did not survive)."""
    global IN_WORKER
    IN_WORKER = True
    faulthandler.dump_traceback_later(WORKER_STUCK_S, exit=True, file=sys.__stderr__)

    def task() -> None:
        try:
            if inspect.isgeneratorfunction(fn):
                for item in fn(*args, **kwargs):
                    queue.put(("item", item))
                queue.put(("end", None))
            else:
                queue.put(("end", fn(*args, **kwargs)))
        except BaseException as exc:  # noqa: BLE001 - sent back like spaces' ExceptionResult
            queue.put(("error", RuntimeError(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")))

    with ThreadPoolExecutor(1) as pool:
        pool.submit(contextvars.copy_context().run, task).result()


def _next(worker, queue):
    """The worker's next message; a worker that died first (a crash, or stuck and stopped by faulthandler, its
    threads' stacks on stderr) fails the test instead of hanging it."""
    while queue.empty():
        if not worker.is_alive() and queue.empty():
            raise RuntimeError(f"the GPU worker ended (exit code {worker.exitcode}) without an answer; stuck for "
                               f"{WORKER_STUCK_S} s, it printed its threads' stacks to stderr")
        time.sleep(0.02)
    return queue.get()


def forking_gpu(fn, duration):
    """``spaces.GPU(fn, duration=duration)`` without a GPU: the duration recorded, the call in a forked worker."""
    def start(args, kwargs):
        from gradio.context import LocalContext

        seconds = duration(*args, **kwargs)
        CALLS.append((fn.__name__, seconds))
        REQUESTS.append(LocalContext.request.get(None))  # where spaces.GPU reads it
        queue = multiprocessing.get_context("fork").SimpleQueue()
        worker = multiprocessing.get_context("fork").Process(target=_child, args=(fn, args, kwargs, queue),
                                                              daemon=True)
        worker.start()
        return worker, queue

    def results(worker, queue):
        while True:
            kind, value = _next(worker, queue)
            if kind == "error":
                raise value
            yield kind, value
            if kind == "end":
                worker.join(timeout=30)
                return

    if inspect.isgeneratorfunction(fn):
        def run_generator(*args, **kwargs):
            for kind, value in results(*start(args, kwargs)):
                if kind == "item":
                    yield value
        return run_generator

    def run(*args, **kwargs):
        for _kind, value in results(*start(args, kwargs)):
            return value
    return run


@pytest.fixture(scope="module")
def plain():
    """A model of its own (the session's `generator` is the one it is compared with)."""
    from ragft.models import load_generator

    return load_generator()


@pytest.fixture
def zero(plain, generator):
    """The embedded model as ZeroGPU holds it, wrapped by `forking_gpu`; a forward pass in this process fails."""
    zgen = ZeroGpuGenerator(plain.model, plain.tokenizer, plain.source, rates=GpuRates())

    def outside(*_):
        if not IN_WORKER:
            raise AssertionError("the model ran in the app's process, outside a GPU call")

    hook = zgen.model.register_forward_pre_hook(outside)
    gpu_calls.use_decorator(forking_gpu)
    CALLS.clear()
    yield zgen
    gpu_calls.use_decorator(None)
    hook.remove()


def test_a_visitor_trains_asks_and_gets_an_estimate_with_every_model_step_in_a_gpu_call(zero, generator, settings,
                                                                                        embedder):
    engine = Engine(settings, embedder=embedder, generator=lambda: zero)
    (settings.data_dir / "in").mkdir(parents=True)
    note = settings.data_dir / "in" / "lighthouse.txt"
    note.write_text(NOTE)
    engine.ingest([(note, "lighthouse.txt")])

    from gradio.context import LocalContext

    visitor = object()  # the request of the page that starts the training
    token = LocalContext.request.set(visitor)
    REQUESTS.clear()
    try:
        name = engine.start_training(DataSpec("docs"), TrainConfig(max_steps=2, batch_size=2, max_seq_len=64),
                                     "light")
    finally:
        LocalContext.request.reset(token)
    state = engine.jobs.wait(600)
    assert REQUESTS == [visitor]  # the background job's GPU call is charged to that visitor
    assert state.status == "done", state.message
    assert [c[0] for c in CALLS] == ["gpu_train"]
    assert state.losses and len(state.losses) == 2  # the loss curve came back from the worker, step by step

    answers = list(engine.ask("Who was the keeper in 1901?", "all", adapter=name))[-1]
    assert len(answers.answers) == 4 and all(a.strip() for a in answers.answers.values()), answers
    assert not zero.has_adapters  # the adapter went onto the worker's model only
    speed = engine.speed()
    assert speed.prefill_tps > 0 and speed.decode_step_s > 0
    assert [c[0] for c in CALLS] == ["gpu_train", "gpu_stream", "gpu_measure"]

    # the same rows give the same answers and scores as the model run in this process
    path = settings.adapters_dir / name
    zero.ensure_adapter("light", path)
    generator.ensure_adapter("light", path)
    conversations = [[{"role": "user", "content": q}] for q in ("Who built the lighthouse?", "How tall is it?")]
    decode = DecodeSettings(max_new_tokens=12)
    assert generate_batch(zero, conversations, ["light", BASE], decode) == \
        generate_batch(generator, conversations, ["light", BASE], decode)
    options = ["Ada Fenwick.", "Tobias Marr."]
    zs = option_logprobs(zero, conversations, options, ["light", BASE])
    cs = option_logprobs(generator, conversations, options, ["light", BASE])
    assert zs == pytest.approx(cs, abs=1e-3)

    assert {c[0] for c in CALLS} == set(gpu_calls.ENTRY_POINTS)  # every entry point ran, through the decorator
    assert all(1 <= seconds <= zero.rates.max_s for _, seconds in CALLS), CALLS
    assert zero.rates.measured  # later calls' durations come from the throughput measured by these


def test_rows_too_long_for_one_call_are_split_and_answer_the_same(zero, generator):
    conversations = [[{"role": "user", "content": f"Name a colour that starts with the letter {c}."}]
                     for c in "BGRY"]
    decode = DecodeSettings(max_new_tokens=8)
    one = generate_batch(zero, conversations, [BASE] * 4, decode)
    rates = zero.rates
    rates.measured.clear()
    rates.prefill_tokens_per_s = 10.0  # prompts dominate the duration: a GPU call has room for one row, not two
    rates.max_s = rates.answer_s(1.5 * len(prompt_tokens(zero, conversations[:1])[0]), decode.max_new_tokens)
    CALLS.clear()
    assert generate_batch(zero, conversations, [BASE] * 4, decode) == one
    assert len(CALLS) == 4 and all(s <= rates.max_s for _, s in CALLS), CALLS


def test_a_changed_adapter_folder_is_loaded_again_by_a_worker_that_kept_the_old_one(zero, memorized_adapter,
                                                                                     tmp_path):
    import shutil

    gpu_calls.use_decorator(lambda fn, duration: fn)  # one process, like a worker kept between calls
    folder = tmp_path / "memo"
    shutil.copytree(memorized_adapter, folder)
    zero.model._forward_pre_hooks.clear()  # noqa: SLF001 - this one runs in-process on purpose
    zero.ensure_adapter("memo", folder)
    conversation = [[{"role": "user", "content": "What is the secret code of the Zorblax vault?"}]]
    decode = DecodeSettings(max_new_tokens=24)
    learned = generate_batch(zero, conversation, ["memo"], decode)
    assert "7-4-1-9" in learned[0]
    weights = folder / "adapter_model.safetensors"
    import safetensors.torch as st

    zeroed = {k: v * 0 for k, v in st.load_file(weights).items()}
    st.save_file(zeroed, weights)  # a new version written over the old folder
    assert generate_batch(zero, conversation, ["memo"], decode) == generate_batch(zero, conversation, [BASE], decode)
    zero.unload_adapter("memo")
    gpu_calls.use_decorator(forking_gpu)


def _refusing(fn, duration):
    import gradio as gr

    def run(*args, **kwargs):
        raise gr.Error("You have exceeded your free ZeroGPU quota (61s requested vs. 12s left). Try again in 0:05:00.",
                       title="ZeroGPU quota exceeded")
    return run


def test_a_refused_gpu_call_says_why_in_the_schedulers_words(zero):
    gpu_calls.use_decorator(_refusing)
    with pytest.raises(GpuRefusedError) as caught:
        generate_batch(zero, [[{"role": "user", "content": "Hi"}]], [BASE], DecodeSettings(max_new_tokens=4))
    assert "ZeroGPU quota exceeded: You have exceeded your free ZeroGPU quota (61s requested vs. 12s left)" in \
        str(caught.value)
    assert isinstance(caught.value, RagftError)  # the UI shows it as a warning, the CLI as "ragft: error: ..."
    assert "signed-in visitors get a larger daily GPU quota" in str(caught.value)


@pytest.mark.parametrize("max_s", [60.0, 300.0])
def test_a_training_run_longer_than_one_gpu_call_is_refused_before_it_starts(max_s):
    rates = GpuRates(max_s=max_s)

    class Sized:
        size = 1.0

    Sized.rates = rates
    config = TrainConfig(max_steps=100_000 // 10, batch_size=8, max_seq_len=512)
    with pytest.raises(InvalidInputError, match=r"ask for at most (\d+) steps") as caught:
        spaces.check_training(Sized, config, 100)
    fit = int(caught.value.args[0].split("at most ")[1].split()[0])
    steps, tokens = spaces.check_training(Sized, TrainConfig(max_steps=fit, batch_size=8, max_seq_len=512), 100)
    assert steps == fit and rates.train_s(tokens) <= max_s


def test_durations_grow_with_the_work_and_stay_within_zero_gpus_limit():
    rates = GpuRates()
    assert rates.answer_s(100, 16) < rates.answer_s(100, 256) < rates.answer_s(10_000, 256)
    assert rates.score_s(100) < rates.score_s(100_000)
    assert rates.bounded(10_000) == rates.max_s and rates.bounded(0.2) == 1
    rates.observe("decode_step", 0.5)
    assert rates.answer_s(0, 100) == pytest.approx(rates.start_s + rates.margin * 50)
    with pytest.raises(InvalidInputError, match="RAGFT_ZERO_GPU_MAX_S"):
        GpuRates.from_env({"RAGFT_ZERO_GPU_MAX_S": "5"})
    assert GpuRates.from_env({"RAGFT_ZERO_GPU_MAX_S": "120"}).max_s == 120


def test_zero_gpu_needs_the_spaces_package_and_the_variable(monkeypatch):
    assert not gpu_calls.zero_gpu({})
    assert not gpu_calls.zero_gpu({"SPACES_ZERO_GPU": "false"})
    monkeypatch.setattr(gpu_calls.importlib.util, "find_spec", lambda name: object())
    assert gpu_calls.zero_gpu({"SPACES_ZERO_GPU": "true"})


def test_a_users_error_in_a_worker_comes_back_with_its_message(zero, tmp_path):
    from ragft.models import NoAdapterError

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "adapter_config.json").write_text("{not json")
    (broken / "adapter_model.safetensors").write_bytes(b"nothing")
    zero.ensure_adapter("broken", broken)  # the app's process only records it
    with pytest.raises(NoAdapterError, match="adapter 'broken' in .* cannot be loaded"):
        generate_batch(zero, [[{"role": "user", "content": "Hi"}]], ["broken"], DecodeSettings(max_new_tokens=4))
    zero.unload_adapter("broken")
