"""Stage 1 of the annotation pipeline: VidLN narratives → noun objects, each localised by one trace run (Sec. 3.2)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from vng.io.common import atomic_write
from vng.io.vidln import read_keyframe
from vng.language.nouns import SpanAgreement, compare_spans, find_nouns, load_spacy
from vng.traces import DEFAULT_LINE_WIDTH, Localisation, localise_noun, make_noun_object, rasterise_trace
from vng.types import Narrative
from vng.visualize import draw_label, overlay_mask

__all__ = ["NounSource", "NounObjectsResult", "localise_narratives", "render_localisation", "write_overlays"]

NounSource = Literal["spacy", "noun_segments"]


@dataclass(frozen=True)
class NounObjectsResult:
    """Localised noun objects, and how spaCy's nouns agree with VidLN ``noun_segments`` (None when not compared)."""

    localisations: list[Localisation]
    agreement: SpanAgreement | None


def localise_narratives(narratives: Iterable[Narrative], *, source: NounSource = "spacy", unit: str = "noun",
                        spacy_model: str | None = None, line_width: int = DEFAULT_LINE_WIDTH,
                        include_background: bool = True, progress: bool = False) -> NounObjectsResult:
    """One :class:`Localisation` per (narrative, actor, noun), in narrative / actor / text order.

    Args:
        source: nouns from spaCy (``"spacy"``, the paper) or VidLN's ``noun_segments``.
        unit: spaCy span unit, ``"noun"`` or ``"chunk"`` (see :mod:`vng.language.nouns`).
        include_background: keep the nouns of the "background" actor narrative (stuff such as road or sky).
    """
    nlp = load_spacy(spacy_model) if source == "spacy" else None
    localisations: list[Localisation] = []
    agreement = SpanAgreement(0, 0, 0, 0, 0) if source == "spacy" else None
    for narrative in tqdm(list(narratives), desc="narratives", disable=not progress):
        for actor_index, actor in enumerate(narrative.actor_narratives):
            if actor.is_background and not include_background:
                continue
            if source == "spacy":
                spans = find_nouns(actor.caption, nlp=nlp, unit=unit)
                if actor.noun_segments:
                    agreement += compare_spans(spans, actor.noun_segments)
            elif source == "noun_segments":
                spans = sorted(set(actor.noun_segments))
            else:
                raise ValueError(f"source must be 'spacy' or 'noun_segments', got {source!r}")
            for span in spans:
                noun = make_noun_object(narrative, actor_index, span, source)
                localisations.append(localise_noun(noun, line_width=line_width))
    return NounObjectsResult(localisations, agreement)


def render_localisation(localisation: Localisation, image: np.ndarray, *, line_width: int = DEFAULT_LINE_WIDTH,
                        color=(255, 60, 60)) -> np.ndarray:
    """The keyframe (H, W, 3) uint8 RGB with the chosen trace run drawn exactly as rasterised, and a label."""
    noun, run = localisation.noun, localisation.run
    height, width = image.shape[:2]
    if (width, height) != tuple(noun.frame_size):
        raise ValueError(f"keyframe is {width}x{height}, but the narrative's traces are for {noun.frame_size}")
    out = image
    if run is not None:
        out = overlay_mask(image, rasterise_trace(run.xy, noun.frame_size, line_width=line_width), color, alpha=1.0)
    return draw_label(out, f"{noun.actor_name}: {noun.text} ({localisation.area} px)")


def write_overlays(localisations: Iterable[Localisation], frames_dir: str | os.PathLike, out_dir: str | os.PathLike,
                   *, line_width: int = DEFAULT_LINE_WIDTH, progress: bool = False) -> list[Path]:
    """Write each localised noun's keyframe with its trace to
    ``<out_dir>/<video_id>/<vidln_id>_<actor_index>_<start>-<end>_<noun>_<keyframe>.png``; returns the paths."""
    written = []
    for localisation in tqdm(list(localisations), desc="overlays", disable=not progress):
        noun, run = localisation.noun, localisation.run
        if run is None:
            continue
        image = read_keyframe(frames_dir, noun.dataset_id, noun.video_id, run.keyframe_name, size=noun.frame_size)
        slug = re.sub(r"[^A-Za-z0-9]+", "-", noun.text).strip("-")
        target = (Path(out_dir) / noun.video_id /
                  f"{noun.vidln_id}_{noun.actor_index}_{noun.span[0]}-{noun.span[1]}_{slug}_{run.keyframe_name}.png")
        with atomic_write(target, "wb") as handle:
            Image.fromarray(render_localisation(localisation, image, line_width=line_width)).save(
                handle, format="PNG")
        written.append(target)
    return written
