"""A KV cache that grows in place: rows join, leave and drop their padding without copying the whole cache."""

from __future__ import annotations

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer


def new_cache(model, length: int = 0, rows: int = 0):
    """A DynamicCache whose full-attention layers are `GrowingLayer`s (sliding-window ones stay as they are), with
    room for ``rows`` rows of ``length`` tokens from the start: a prompt prefilled in chunks is not copied at each
    chunk, and the rows already running can join it without a copy of its cache."""
    cache = DynamicCache(config=model.config)
    cache.layers = [GrowingLayer(length, rows) if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache


class GrowingLayer(DynamicLayer):
    """A DynamicLayer that appends into spare room instead of concatenating its whole cache at every step (that
    concatenation was a large share of a decode step on a CPU). ``keys`` and ``values`` stay the
    filled part (views of the room's first rows and tokens). Rows leaving, rows joining (`append_rows`) and leading
    columns dropped keep the room where they can, so the next step copies nothing; a caller that replaces ``keys``
    and ``values`` itself makes the next update copy them into fresh room."""

    spare = 64  # tokens of room added whenever the layer runs full

    def __init__(self, length: int = 0, rows: int = 0):
        super().__init__()
        self.length, self.rows = length, rows  # tokens and rows the first room holds at least
        self._room: tuple[torch.Tensor, torch.Tensor] | None = None  # (keys, values) with spare rows and tokens

    def _filled(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``keys`` and ``values``: tensors once the layer is initialized (by its first update)."""
        assert self.keys is not None and self.values is not None
        return self.keys, self.values

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
            self._room = None
        keys, values = self._filled()
        filled = keys.shape[-2] if keys.dim() == 4 else 0
        total, rows = filled + key_states.shape[-2], key_states.shape[0]
        room = self._own_room() if keys.shape[0] == rows else None
        if room is None or room[0].shape[-2] < total:
            shape = (max(rows, self.rows), key_states.shape[1], max(total, self.length) + self.spare,
                     key_states.shape[-1])
            room = (key_states.new_empty(shape), value_states.new_empty(shape))
            if filled:
                room[0][:rows, :, :filled] = keys
                room[1][:rows, :, :filled] = values
            self._room = room
        room[0][:rows, :, filled:total] = key_states
        room[1][:rows, :, filled:total] = value_states
        self.keys, self.values = room[0][:rows, :, :total], room[1][:rows, :, :total]
        return self.keys, self.values

    def _own_room(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The room, when ``keys`` and ``values`` are still its views; else None."""
        room, keys = self._room, self.keys
        if room is not None and keys is not None and keys.dim() == 4 and room[0].data_ptr() == keys.data_ptr() \
                and room[0].shape[0] >= keys.shape[0]:
            return room
        return None

    def append_rows(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Append another cache's rows, left-padded with zeros to this one's length (at least theirs): into the
        spare rows of the room when it has them, else with this cache's rows into fresh room (one copy)."""
        my_keys, my_values = self._filled()
        mine, length = my_keys.shape[0], my_keys.shape[-2]
        rows = mine + keys.shape[0]
        room = self._own_room()
        if room is None or room[0].shape[0] < rows:
            shape = (rows, keys.shape[1], length + self.spare, keys.shape[-1])
            room = (keys.new_empty(shape), values.new_empty(shape))
            room[0][:mine, :, :length], room[1][:mine, :, :length] = my_keys, my_values
        pad = length - keys.shape[-2]
        for into, part in zip(room, (keys, values)):
            into[mine:rows, :, :pad] = 0  # masked, but garbage could be NaN, and 0 * NaN is NaN
            into[mine:rows, :, pad:length] = part
        self._room = room
        self.keys, self.values = room[0][:rows, :, :length], room[1][:rows, :, :length]

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep the rows ``indices``: the first rows keep their room as it is; others are copied, with their room."""
        room = self._own_room()
        if room is None:
            return super().batch_select_indices(indices)
        filled, rows = self._filled()[0].shape[-2], len(indices)
        if not torch.equal(indices.cpu(), torch.arange(rows)):  # else the room keeps its spare rows too
            room = (room[0].index_select(0, indices), room[1].index_select(0, indices))
        self._room = room
        self.keys, self.values = room[0][:rows, :, :filled], room[1][:rows, :, :filled]

    def drop_columns(self, first: int) -> None:
        """Drop the first ``first`` tokens' columns (padding in every row), keeping the room behind them."""
        keys, values = self._filled()
        rows, filled = keys.shape[0], keys.shape[-2]
        room = self._own_room()
        if room is not None:
            self._room = (room[0][:, :, first:], room[1][:, :, first:])
            self.keys, self.values = (part[:rows, :, :filled - first] for part in self._room)
        else:
            self.keys, self.values = keys[:, :, first:], values[:, :, first:]
