"""Every user-facing string of the web UI, in one place."""

from ..documents import SUPPORTED_SUFFIXES

TITLE = "ragft — RAG vs fine-tuning, on your own documents"
INTRO = (
    "Upload documents, then ask one question and compare four answers from **one** base model: "
    "**Plain**, **RAG** (retrieved chunks in the prompt), **Fine-tuned** (LoRA adapter on), and **RAG + Fine-tuned**."
)
SUPPORTED = ", ".join(SUPPORTED_SUFFIXES)
UPLOAD_LABEL = f"Files to add ({SUPPORTED})"
NO_FILES = "Pick one or more files first."
NO_DOCS = "No documents yet: upload some above."
PICK_DOC = "Pick a document first."
DELETED = "Deleted **{name}** ({n} chunks)."
SEARCH_EMPTY = "Type a query."
EMPTY_QUESTION = "Type a question first."
NO_ADAPTER_CHOICE = "(none)"
ADAPTER_INFO = "LoRA adapter used by the Fine-tuned and RAG + Fine-tuned panes (folders under {dir})."
FINETUNE_COMING = (
    "### Fine-tuning from the UI is coming\n"
    "Training LoRA adapters here (with a live loss curve and cancel) lands with the next release. "
    "Meanwhile any standard peft adapter folder (`adapter_config.json` + weights) placed under "
    "`{dir}/<name>/` appears in the Chat tab's adapter list."
)
ERROR = "Something went wrong: {error}"
