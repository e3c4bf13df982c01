"""ragft: see what retrieval (RAG) and LoRA fine-tuning each do to a language model, on your own documents."""

import os

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
