"""ragft web app. Locally: `make run` (see README). On Hugging Face Spaces this file is the entry point."""

import os

from ragft.ui import launch

if __name__ == "__main__":
    on_spaces = bool(os.environ.get("SPACE_ID"))
    launch(
        host=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0" if on_spaces else "127.0.0.1"),
        port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
    )
