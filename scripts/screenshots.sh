#!/usr/bin/env bash
# The README's screenshots of the five tabs, made from the running app: the browser tests drive `python app.py` in
# Chromium and save them under test-artifacts/; this runs those tests and copies the pictures to docs/.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest -q -p no:cacheprovider tests/e2e/test_browser.py tests/e2e/test_experiment_browser.py \
    -k "four_answers or train_from_the_ui or evaluate_generated or experiment_survives"
for tab in documents chat finetune evaluate experiment; do
    cp "test-artifacts/$tab.png" "docs/$tab.png"
done
echo "docs/: documents, chat, finetune, evaluate and experiment screenshots updated"
