"""ragft: see what retrieval (RAG) and LoRA fine-tuning each do to a language model, on your own documents."""

import os
from pathlib import Path

__version__ = "0.1.0"

# torch's OpenMP on Linux (libgomp), set before torch loads. Generation runs in worker threads; once the main thread
# has run a parallel region (loading a model does), its idle team counts too, libgomp sees more threads than CPUs and
# its threads spin only 100 times at each barrier before sleeping. A decode step is hundreds of barriers, each then a
# sleep and a wake-up: in a worker thread on this 2-core machine a two-row product over all of SmolLM2-135M's weights
# took 34-49 ms instead of 16, a 64-row one 115-137 ms instead of 95. ACTIVE makes that 1,000 spins; GOMP_SPINCOUNT
# keeps an idle thread's spinning where it was (about 3 ms; ACTIVE alone would spin for minutes).
OPENMP_SET_HERE = {k: v for k, v in {"OMP_WAIT_POLICY": "ACTIVE", "GOMP_SPINCOUNT": "300000"}.items()
                   if k not in os.environ}  # what the user had set stays (the vLLM server is started without these)
os.environ.update(OPENMP_SET_HERE)


def cpu_quota(cgroup: str = "/sys/fs/cgroup") -> int:
    """The CPUs this process may use: the fewer of those it is pinned to and its container's cgroup quota. A
    container reports the host's cores (a Space's CPU Basic: 2 vCPUs on a host of dozens), and a thread team that
    large, spinning at barriers, runs on cores the Space does not have."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    root = Path(cgroup)
    try:  # cgroup v2: "max 100000" or "<quota> <period>"
        quota, _, period = (root / "cpu.max").read_text().partition(" ")
    except OSError:
        try:  # cgroup v1
            quota = (root / "cpu" / "cpu.cfs_quota_us").read_text()
            period = (root / "cpu" / "cpu.cfs_period_us").read_text()
        except OSError:
            return n
    try:
        q, p = int(quota), int(period)
    except ValueError:  # "max": no quota
        return n
    return max(1, min(n, -(-q // p))) if q > 0 and p > 0 else n


# torch sizes its thread team from the host's cores; a container's quota caps it (children inherit the variable)
_QUOTA = cpu_quota()
if "OMP_NUM_THREADS" not in os.environ and _QUOTA < (os.cpu_count() or 1):
    os.environ["OMP_NUM_THREADS"] = str(_QUOTA)
