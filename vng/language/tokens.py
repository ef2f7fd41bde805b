"""Character spans ↔ token positions, for marking a noun inside a tokenized caption.

A fast Hugging Face tokenizer returns, with ``return_offsets_mapping=True``, one ``(start, end)`` character slice of
the caption per token; special and padding tokens get ``(0, 0)``. WordPiece (BERT, MiniLM) offsets cover the
sub-word only ("bicyclists" → ``bi`` ``##cy`` ``##cl`` ``##ists``, each its own slice); byte-level BPE (RoBERTa,
ReferFormer's text encoder) offsets include the leading space of a token when the tokenizer keeps
``trim_offsets=False``. Both work here because a token is selected by overlap, and a span that starts and ends on
non-space characters never overlaps a neighbour only through that neighbour's leading space::

    >>> import numpy as np
    >>> offsets = np.array([[0, 0], [0, 1], [1, 5], [5, 12], [12, 13], [0, 0]])  # <s> A Ġred Ġcircle . </s>
    >>> noun_token_mask(offsets, (2, 12)).tolist()  # "red circle" in "A red circle."
    [False, False, True, True, False, False]
"""

from __future__ import annotations

import numpy as np

__all__ = ["noun_token_mask"]


def noun_token_mask(offsets, span: tuple[int, int]) -> np.ndarray:
    """(L,) bool: the tokens whose character slice overlaps the noun's character span ``[start, end)``.

    Args:
        offsets: (L, 2) integer array-like, a fast tokenizer's ``offset_mapping`` for one caption; empty slices
            (special and padding tokens, ``(0, 0)``) never overlap anything.
        span: (start, end) character span of the noun in the caption, ``start < end``.

    Raises:
        ValueError: bad shapes or span, or no token overlaps the span (e.g. the caption was truncated before the
            noun by the tokenizer's ``max_length``).
    """
    offsets = np.asarray(offsets)
    if offsets.ndim != 2 or offsets.shape[1] != 2:
        raise ValueError(f"offsets must have shape (L, 2), got {offsets.shape}")
    start, end = (int(v) for v in span)
    if not 0 <= start < end:
        raise ValueError(f"noun span must satisfy 0 <= start < end, got ({start}, {end})")
    token_starts, token_ends = offsets[:, 0], offsets[:, 1]
    mask = (token_ends > token_starts) & (token_starts < end) & (token_ends > start)
    if not mask.any():
        last = int(token_ends.max(initial=0))
        raise ValueError(f"no token overlaps the noun span ({start}, {end}); the tokens cover characters up to "
                         f"{last} (was the caption truncated by max_length?)")
    return mask
