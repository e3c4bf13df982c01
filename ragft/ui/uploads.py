"""Files from requests: only what Gradio received in an upload to this app, never a path on the server.

A request can name any string as a file. The one way in is `uploaded`: the path must be one that Gradio's upload
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
    return path if isinstance(path, str) and path and not isinstance(item, str) else None


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


def file_objects(data) -> list:
    """The FileData objects anywhere in a request's data (dicts marked ``"meta": {"_type": "gradio.FileData"}``, as
    Gradio recognises them)."""
    from gradio_client.utils import is_file_obj_with_meta

    found = []

    def walk(value):
        if is_file_obj_with_meta(value):
            found.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)

    walk(data)
    return found
