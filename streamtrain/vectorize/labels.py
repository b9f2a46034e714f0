"""Label strings <-> class ids.

While reading, labels get provisional ids in order of first sight; once the
training inputs are read, ``LabelIndex.finalize`` fixes the label map in a
stable sorted order (numeric labels numerically) and returns the remapping.
"""

from __future__ import annotations

import numpy as np

from streamtrain.errors import DataError
from streamtrain.io.readers import RawChunk

MAX_CLASSES = 1000


def sort_labels(labels: list[str]) -> list[str]:
    """The label map's order: numerically when every label is an integer, else as strings."""
    try:
        return sorted(labels, key=int)
    except ValueError:
        return sorted(labels)


class LabelIndex:
    """Label string -> class id: provisional ids in order of first sight, then ``finalize``'s sorted map."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.frozen = False

    def encode(self, chunk: RawChunk) -> np.ndarray:
        """Provisional ids for a chunk's labels, new labels numbered as they are first seen.

        Args:
            chunk: a chunk of raw rows.

        Returns:
            int32 id per row; -1 for a label first seen after ``freeze`` (a test-only label).

        Raises:
            DataError: a label beyond ``MAX_CLASSES`` distinct ones, naming its file and row.
        """
        out = np.empty(len(chunk), np.int32)
        for i, label in enumerate(chunk.labels):
            idx = self.ids.get(label)
            if idx is None:
                if self.frozen:
                    out[i] = -1
                    continue
                if len(self.ids) >= MAX_CLASSES:
                    path, row = chunk.where(i)
                    raise DataError(f"more than {MAX_CLASSES} distinct labels; is --label-column right?", path, row)
                idx = self.ids[label] = len(self.ids)
            out[i] = idx
        return out

    @classmethod
    def frozen_map(cls, names: list[str]) -> LabelIndex:
        """A frozen index whose ids are the final ids of ``names`` (an append's label map)."""
        index = cls()
        index.ids = {name: i for i, name in enumerate(names)}
        index.freeze()
        return index

    def freeze(self) -> None:
        """Stop numbering new labels (the training inputs are read): ``encode`` gives them -1."""
        self.frozen = True

    def finalize(self) -> tuple[list[str], np.ndarray]:
        """Fix the label map in ``sort_labels`` order.

        Returns:
            (the label names in final id order, int32 provisional id -> final id).
        """
        names = sort_labels(list(self.ids))
        remap = np.zeros(len(self.ids), np.int32)
        for final, name in enumerate(names):
            remap[self.ids[name]] = final
        return names, remap
