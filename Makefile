# The two commands of the README. Each sets up what it needs first (scripts/setup.sh is idempotent).
.PHONY: run test

run:  ## install, then start the app at http://127.0.0.1:7860
	./scripts/setup.sh
	.venv/bin/python app.py

test:  ## install (with test tools and chromium), then run the whole test suite
	./scripts/setup.sh --dev
	.venv/bin/python -m pytest
