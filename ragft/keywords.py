"""Keyword search over a store's chunks (BM25, by ``bm25s``) and its fusion with vector search.

A small embedder places "Section 3.4", "2303.16199" or "Exhibit B" near any other section, number or exhibit; BM25
matches the words themselves. `Store.search` with ``retrieval="hybrid"`` takes the best ``POOL`` chunks of each
and fuses the two rankings by reciprocal rank (`fuse`), which needs no score scale shared between them.

The index is built from the chunks in Chroma, the one source of truth, and rebuilt whenever the store's documents
changed (their records' hashes: an upload, a replacement, a deletion, a snapshot restored, another process's
write). So it never drifts from Chroma and needs no file of its own: after a restart the first search builds it.
A rebuild that took longer than ``BACKGROUND_AFTER_S`` (16 s at 100k chunks) is done next in a background thread
while searches use the index as it was: a deleted chunk it still names is dropped by `Store.search` (Chroma no
longer has it), and a new one is found by vector search until the new index is swapped in.

    index = KeywordIndex()
    index.top("who signed Exhibit B?", 20, key, load=lambda: (ids, texts))  # [(chunk id, BM25 score), ...]
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bm25s import BM25

# Words as a person searches for them: "3.4", "2303.16199", "7-4-1-9" and "llama-adapter" stay whole, and a
# one-letter word ("Exhibit B") counts; case is ignored, and English stop words ("the", "of") do not count.
WORD = re.compile(r"\w+(?:[.\-]\w+)*")
RRF_K = 60  # reciprocal rank fusion's constant, as Cormack et al. (2009) set it; not tuned here
POOL = 20  # candidates each retriever hands the fusion (at least 4 x k)
BACKGROUND_AFTER_S = 1.0  # a rebuild slower than this runs in the background from then on

log = logging.getLogger(__name__)


@functools.cache
def _bm25s():
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets DEBUG on import: the CLI's stderr stays clean
    return bm25s


@functools.cache
def stop_words() -> frozenset[str]:
    """English stop words ("the", "of", "is"), as bm25s lists them."""
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def words(text: str, stop: frozenset[str] = frozenset()) -> list[str]:
    return [w for w in WORD.findall(text.lower()) if w not in stop]


def fuse(rankings: list[list[str]], k: int = RRF_K) -> list[str]:
    """Ids ordered by reciprocal rank fusion: each ranking adds 1 / (k + rank) to the ids it holds (rank from 1);
    ties keep the order of first appearance."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, cid in enumerate(ranking, start=1):
            scores[cid] = scores.get(cid, 0.0) + 1.0 / (k + rank)
    return sorted(scores, key=lambda cid: -scores[cid])


class KeywordIndex:
    """A BM25 index of one store's chunks, rebuilt when the store's ``key`` changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: object = None
        self._ids: list[str] = []
        self._bm25: BM25 | None = None
        self.build_s = 0.0  # how long the last build took
        self.building: threading.Thread | None = None  # a rebuild running in the background

    def top(self, query: str, n: int, key: object, load: Callable[[], tuple[list[str], list[str]]]
            ) -> list[tuple[str, float]]:
        """The ``n`` best chunks for ``query`` that share a word with it, best first. ``key`` names the store's
        current contents; when it differs from the index's, ``load()`` gives every chunk's (ids, texts) again: at
        once when there is no index yet or the last build was quick, else in a background thread."""
        with self._lock:
            if key != self._key:
                if self._key is None or self.build_s < BACKGROUND_AFTER_S:
                    self._swap(key, *self._build(load))
                elif self.building is None:
                    self.building = threading.Thread(target=self._rebuild, args=(key, load), daemon=True,
                                                     name="ragft-keyword-index")
                    self.building.start()
            bm25, ids = self._bm25, self._ids
        terms = words(query, stop_words())
        if bm25 is None or not terms:
            return []
        found, scores = bm25.retrieve([terms], k=min(n, len(ids)), show_progress=False)
        return [(ids[i], float(s)) for i, s in zip(found[0], scores[0]) if s > 0]

    def _build(self, load: Callable[[], tuple[list[str], list[str]]]) -> tuple[list[str], BM25 | None, float]:
        started = time.perf_counter()
        ids, texts = load()
        bm25 = None
        if ids:
            stop = stop_words()
            bm25 = _bm25s().BM25()
            bm25.index([words(t, stop) or [""] for t in texts], show_progress=False)
        return ids, bm25, time.perf_counter() - started

    def _swap(self, key: object, ids: list[str], bm25: BM25 | None, seconds: float) -> None:
        self._key, self._ids, self._bm25, self.build_s = key, ids, bm25, seconds

    def _rebuild(self, key: object, load: Callable[[], tuple[list[str], list[str]]]) -> None:
        try:
            built = self._build(load)
            with self._lock:
                self._swap(key, *built)  # a later change is seen by the next search, which starts another
        except Exception:  # the next search tries again; until then the index as it was keeps answering
            log.exception("rebuilding the keyword index failed")
        finally:
            with self._lock:
                self.building = None
