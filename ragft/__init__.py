"""ragft: see what retrieval (RAG) and LoRA fine-tuning each do to a language model, on your own documents."""

__version__ = "0.1.0"
