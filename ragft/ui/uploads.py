"""Files from requests: only what Gradio received in an upload to this app, never a path on the server.

A request can name any string as a file. The one way in is `checked`: the path must be one that Gradio's upload
route wrote (``blocks.upload_file_set``), still inside its upload folder once links are resolved, and a plain file.
Everything else, a plain path string, a FileData pointing elsewhere, a link out of the folder, is refused with one
message that is the same whether or not the path exists, so a caller learns nothing about the server's files.
"""

from __future__ import annotations

from pathlib import Path

from gradio.context import LocalContext
from gradio.utils import get_upload_folder

from ..errors import InvalidInputError

NOT_UPLOADED = ("only files uploaded to this app can be used: send each file's content as an upload "
                "(gradio_client: handle_file(path)), not a path on the server")


def _path_of(item) -> str | None:
    """The path of a FileData (a dict from JSON, or Gradio's model); None for anything else, a plain string too."""
    path = item.get("path") if isinstance(item, dict) else getattr(item, "path", None)
    return path if isinstance(path, str) and path else None


def checked(path: str | None, blocks=None) -> Path:
    """``path`` if Gradio's upload route wrote it and it is still a plain file in the upload folder (links
    resolved), else `InvalidInputError` (`NOT_UPLOADED`). A `gr.File` handler's path passes this too.
    ``blocks``: the app (default: the one handling the current request)."""
    blocks = blocks or LocalContext.blocks.get(None)
    if not path or blocks is None or path not in blocks.upload_file_set:
        raise InvalidInputError(NOT_UPLOADED)
    real = Path(path).resolve()
    if not real.is_relative_to(Path(get_upload_folder()).resolve()) or not real.is_file():
        raise InvalidInputError(NOT_UPLOADED)
    return real


def uploaded_files(items) -> list[Path]:
    """The files of an API request: a FileData or a list of them, each `checked`; a plain string is refused."""
    if isinstance(items, (dict, str)):
        items = [items]
    if not isinstance(items, list) or not items:
        raise InvalidInputError("no files given: upload one or more files")
    return [checked(_path_of(item)) for item in items]


NOT_A_COMPONENT = "messages carry text only: a component inside a message is not taken"


def screen(data, blocks) -> None:
    """Refuse anything in a request's values that could make Gradio open a server path: every dict with a
    ``path`` (marked as FileData or not) must be an upload (`checked`), and a ``"type": "component"`` block (a
    Chatbot message may hold one, which Gradio would build from the caller's values: files, images, audio by
    path or URL) is never taken. Raises `InvalidInputError`."""
    if isinstance(data, dict):
        if data.get("type") == "component":
            raise InvalidInputError(NOT_A_COMPONENT)
        if "path" in data:
            checked(data["path"] if isinstance(data["path"], str) else None, blocks)
        for value in data.values():
            screen(value, blocks)
    elif isinstance(data, (list, tuple)):
        for value in data:
            screen(value, blocks)

