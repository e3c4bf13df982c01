"""Every user-facing string of the web UI, in one place."""

from ..chat import NO_ADAPTER_TEXT, NO_DOCUMENTS_TEXT
from ..documents import SUPPORTED_SUFFIXES

TITLE = "ragft — RAG vs fine-tuning, on your own documents"
INTRO = (
    "Upload documents, then ask one question and compare four answers from **one** base model: "
    "**Plain**, **RAG** (retrieved chunks in the prompt), **Fine-tuned** (LoRA adapter on), and **RAG + Fine-tuned**."
)
SUPPORTED = ", ".join(SUPPORTED_SUFFIXES)
UPLOAD_LABEL = f"Files to add ({SUPPORTED})"
NO_FILES = "Pick one or more files first."
INTERRUPTED_INGEST = ("⚠️ The app stopped while adding {names}; what had been stored of it was removed and any earlier "
                      "version kept. Upload it again.")
NO_DOCS = "No documents yet: upload some above."
PICK_DOC = "Pick a document first."
DELETED = "Deleted **{name}** ({n} chunks)."
SEARCH_EMPTY = "Type a query."
EMPTY_QUESTION = "Type a question first."
NO_ADAPTER_CHOICE = "(none)"
ADAPTER_INFO = ("LoRA adapter used by the Fine-tuned and RAG + Fine-tuned panes (the adapters you trained in "
                "Fine-tune).")
INTERNAL_ERROR = "the server could not do that (an internal error; it is in the app's log): try again, or report it"
ONE_GENERATION = ("you already have a question being answered or waiting: wait for its answer (one at a time per "
                  "visitor, so that everyone gets a turn)")
FINETUNE_INTRO = (
    "Train a LoRA adapter on the shared base model, watch the loss, then compare it in the **Chat** tab "
    "(Fine-tuned and RAG + Fine-tuned panes). Adapters are saved in your workspace as standard peft folders (download one as a zip below)."
)
DATA_SOURCES = {
    "Stored documents (continued pre-training)": "docs",
    "Question/answer file (JSONL)": "qa",
    "RAFT: QA file + retrieved context": "raft",
}
DATA_HELP = (
    "**Stored documents**: the model reads your chunks (loss on every token) — knowledge injection.  \n"
    "**Question/answer file**: one JSON object per line, `{\"question\": ..., \"answer\": ...}` or "
    "`{\"messages\": [...]}`; loss on the answer only.  \n"
    "**RAFT**: each question is trained with retrieved context — its gold chunk among distractor chunks, and for "
    "some examples distractors only — so the adapter learns to use context. This is what makes RAG + Fine-tuned "
    "better than either alone."
)
TRAIN_STARTED = "Training **{name}** started."
CANCEL_SENT = "Cancelling: the run stops at the end of its current step and keeps what it learned."
NOTHING_TO_CANCEL = "No training is running."
BUSY = "⏳ Busy: {job} is {status}; {what} waits until it ends (or cancel it in its tab)."
PICK_ADAPTER = "Pick an adapter first."
ADAPTER_DELETED = "Deleted adapter **{name}**."
IDLE = "No training yet in this session of the app."
ERROR = "Something went wrong: {error}"
EVAL_INTRO = (
    "Score the four variants on questions about **your** documents — same questions, same decoding, same seed, "
    "batched through the one model. Make a question set (generate, upload, or pick a saved one), review it, then "
    "press **Run evaluation**."
)
QGEN_METHODS = {
    "Fill-in-the-blank from sentences (no model; names, numbers, years)": "cloze",
    "Written by the base model (needs a capable model; the embedded 135M one writes few usable questions)": "llm",
}
QFORMATS = {"Open answer (generated, then compared)": 0, "Multiple choice, 4 options (log-likelihood)": 4}
SPLITS = {
    "Save as one set": "",
    "Held-out facts: NAME-train (for Fine-tune) and NAME-test (for Evaluate)": "heldout",
    "Paraphrase: train on two wordings of each fact, test on a third (Ovadia et al. 2023)": "paraphrase",
}
QSET_HELP = (
    "Upload JSON Lines: one `{\"question\": ..., \"answer\": ...}` per line; optional `source` (document name) "
    "and `chunk` (its chunk number) or `context` (the passage) for recall@k, and `choices` (a list holding the "
    "answer) for multiple choice. Edit cells below to fix a pair; untick **keep** to drop it."
)
METRICS_HELP = (
    "**How scores are computed.** Answers and expected answers are normalised (lower case, punctuation and "
    "a/an/the removed). **Correct / accuracy**: the expected answer appears in the answer; for multiple choice, "
    "each option is scored as the variant's reply by log-probability (for a fill-in-the-blank question, the "
    "sentence completed with the option) and the most likely option must be the expected one. "
    "**Exact match**: normalised texts equal. **Token F1**: overlap of the two bags of words. "
    "**Contains**: the expected answer appears as whole words. **Recall@k** (RAG variants): the question's source "
    "chunk is among the k retrieved. **s/answer**: generation time divided by answers (batched). **tokens/s**: "
    "generated tokens per second of generation."
)
NO_QUESTIONS = "No questions yet: generate, upload or pick a set first."
NEED_SET_NAME = "Type a name for the set."
EVAL_IDLE = "Not run yet."
EVAL_STARTED = "Evaluation of **{name}** started: progress and scores appear below as it runs."
EVAL_STOP_SENT = "Stopping after the current step; the scores so far are kept."
NOTHING_TO_STOP = "No evaluation is running."
EXPERIMENT_INTRO = (
    "**RAG, fine-tuning, or both — for *your* documents?** One run generates questions from the documents, splits "
    "them into train and test, trains LoRA adapters on the train part, scores **Plain**, **RAG**, **Fine-tuned** "
    "and **RAG + Fine-tuned** on the test part, and gives a verdict with 95% confidence intervals, paired tests, "
    "the cause of every miss and the costs. Press **Estimate time** to see the plan first."
)
PRESET_HELP = "quick: about 5 minutes on 2 CPU cores for a few pages; thorough: 4x the questions, longer training"
CAUSES_HELP = (
    "**Why answers were wrong** — *retrieval miss*: no retrieved chunk holds the answer; *context ignored*: a chunk "
    "holds it, the reply does not; *buried*: the reply holds it, but in a long ramble (not counted correct); "
    "*not learned*: the adapter misses the fact even in the wording it was trained on; *did not generalise*: right "
    "on the trained wording, wrong on this one; *not trained*: the fact was held out of training; *not known*: the "
    "base model cannot know it without the documents."
)
NEED_RECIPE = "Pick at least one adapter to train (qa, raft or docs)."
EXP_IDLE = "No experiment yet in this session of the app."
EXP_CANCEL_SENT = "Cancelling: the experiment stops after the current step and reports what was scored so far."
NOTHING_TO_CANCEL_EXP = "No experiment is running."
RETRAIN = "Retrain on the current documents"
RETRAIN_STARTED = (
    "Training **{name}** on the current documents started (same recipe and settings); follow it in the Fine-tune "
    "tab, then pick it here."
)
EXP_METHODS = {
    "Fill-in-the-blank from sentences (no model)": "cloze",
    "Written by the base model (set RAGFT_BASE_MODEL to a capable model)": "llm",
}

# --- workspaces ----------------------------------------------------------------------------------------------------
WORKSPACE_USER = "🔒 Signed in as **{name}**: your documents, adapters and results are private to your account."
WORKSPACE_ANONYMOUS = ("🔒 Your documents, adapters and results are private to this browser, and deleted after {hours} h "
                       "unused.")
WORKSPACE_RESTART = " They are temporary: a restart of the Space deletes them too."
WORKSPACE_SIGN_IN = " Sign in with Hugging Face to keep them across browsers."
WORKSPACE_KEPT = " They are kept on the Space's persistent storage across restarts."
RETRIEVAL = {
    "hybrid": ("Hybrid retrieval: chunks ranked by meaning (embeddings) and by the words they share with the query "
               "(BM25: names, numbers, section titles), the two rankings fused. Every RAG answer, evaluation and "
               "experiment finds its chunks this way (`RAGFT_RETRIEVAL`)."),
    "vector": ("Vector retrieval: chunks ranked by meaning (embeddings) only. Every RAG answer, evaluation and "
               "experiment finds its chunks this way (`RAGFT_RETRIEVAL=hybrid` adds keyword search)."),
}
ZERO_GPU = (" This Space runs on ZeroGPU: each answer, training run and evaluation uses some of your daily GPU time "
            "(more when signed in); when it runs out, the app says so and when to try again.")
WORKSPACE_NOT_KEPT = (" This Space has no persistent storage: a restart deletes them (its owner can add storage "
                      "in the Space's settings).")

# Where the user fixes a core error whose `fix` is another part of the app (ui.errors.user_message).
FIX_IN_TAB = {"documents": "(Documents tab)", "adapters": "(Fine-tune tab)"}
# A pane that cannot run: the core's notice, and the tab to go to.
NOTICE_FIX = {NO_ADAPTER_TEXT: " Train one in the Fine-tune tab.", NO_DOCUMENTS_TEXT: " Add some in the Documents tab."}

OWN_QUESTIONS = ("Your own questions (optional, up to 50): one a line, 'question | answer you expect'. They are "
                 "never trained on, and the verdict speaks for them first.")
OWN_QUESTIONS_EXAMPLE = "Who maintains the pump station? | Ines Halvorsen\nHow long is the warranty? | 24 months"
