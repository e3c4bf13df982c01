# The two commands of the README. Each sets up what it needs first (scripts/setup.sh is idempotent).
.PHONY: run run-vllm test test-fast screenshots

run:  ## install, then start the app at http://127.0.0.1:7860
	./scripts/setup.sh
	.venv/bin/python app.py

run-vllm:  ## the app with answers from a vLLM server it starts itself (sets up .vllm-venv on first use)
	./scripts/setup.sh
	./scripts/setup_vllm.sh
	RAGFT_ENGINE=vllm .venv/bin/python app.py

test:  ## install (with test tools and chromium), then run the whole test suite
	./scripts/setup.sh --dev
	.venv/bin/python -m pytest

screenshots:  ## the README's screenshots of the five tabs, from the running app in Chromium (docs/)
	./scripts/setup.sh --dev
	./scripts/screenshots.sh

test-fast:  ## the fast tier: no language model, training, subprocess or browser (under a minute)
	./scripts/setup.sh --dev
	.venv/bin/python -m pytest -m "not slow and not e2e" -q
