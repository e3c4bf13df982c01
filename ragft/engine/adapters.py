"""Adapter verbs: list, load onto the shared model (under this workspace's key), run record, zip, delete,
freshness, the adapter quota."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..adapters import (
    RunRecord,
    delete_adapter,
    list_adapters,
    read_run,
    stale_note,
    staleness,
    zip_adapter,
)
from ..errors import InvalidInputError
from ..models import (
    NoAdapterError,
)
from .base import EngineBase
from .documents import QuotaError


class AdapterVerbs(EngineBase):
    def adapters(self) -> list[str]:
        return list_adapters(self.settings.adapters_dir)

    def use_adapter(self, name: str) -> None:
        """Make sure adapter ``name`` (a folder under the adapters dir) is loaded on the base model."""
        if name not in self.adapters():
            raise NoAdapterError(
                f"no adapter named {name!r}; available: {', '.join(self.adapters()) or 'none yet (train one first)'}"
            )
        self.generator.ensure_adapter(self.adapter_key(name), self.settings.adapters_dir / name)

    def adapter_run(self, name: str | None) -> RunRecord | None:
        """The run record of this workspace's adapter ``name`` (None when there is none or the name is not one of
        its adapters: a crafted name never reads outside the adapters folder)."""
        if not name or name not in self.adapters():
            return None
        return read_run(self.settings.adapters_dir / name)

    def zip_adapter(self, name: str) -> Path:
        """A zip of adapter ``name``'s folder in a fresh temporary folder, for download."""
        if name not in self.adapters():
            raise NoAdapterError(f"no adapter named {name!r}")
        return zip_adapter(self.settings.adapters_dir, name, Path(tempfile.mkdtemp(prefix="ragft-zip-")))

    def delete_adapter(self, name: str) -> None:
        job = self.jobs.state
        if job.active and job.kind == "train" and job.name == name:
            raise InvalidInputError(f"{name} is being trained: cancel the run first")
        if self.generator_loaded is not None:
            self.generator_loaded.unload_adapter(self.adapter_key(name))
        delete_adapter(self.settings.adapters_dir, name)

    def check_adapter_room(self, needed: int = 1) -> None:
        """`QuotaError` when ``needed`` more adapters would pass RAGFT_MAX_ADAPTERS (before any training starts)."""
        have = len(self.adapters())
        if have + needed > self.settings.max_adapters:
            raise QuotaError(f"{have} adapters are saved and this run would add {needed}; the limit is "
                             f"{self.settings.max_adapters} (RAGFT_MAX_ADAPTERS): delete some first", fix="adapters")

    def adapter_staleness(self, name: str | None) -> str:
        """"Adapter X is stale: ..." when a document it was trained on changed or was deleted since; else ""."""
        if not name:
            return ""
        run = self.adapter_run(name)
        return stale_note(name, staleness(run, self.store.documents())) if run else ""
