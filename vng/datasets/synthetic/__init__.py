"""The embedded sample dataset: synthetic videos of coloured shapes, written in every release format.

``generate_sample_data(out_dir, seed=0)`` (CLI: ``vng sample-data --out DIR``) renders short videos of 1–3 textured,
moving shapes ("the red circle", "the blue square") over textured grey backgrounds, with dense instance masks, and
derives from the same scenes everything the project reads: VidLN narratives with timed words and mouse traces,
Point-VOS point annotations (PV-Oops / PV-Kinetics style) with pseudo-masks, DAVIS and YouTube-VOS layouts, VNG
expression files and COCO-PNG panoptic narrative grounding. No download is needed; the same seed gives byte-identical
JSON, masks and frames.

Output layout (``<out>/``)::

    index.json                                    what was written: counts per format and split
    vidln/{train,val,kinetics_train}.jsonl        VidLN narratives (one per video)
    frames/<dataset_id>/<video_id>/<frame>.jpg    all frames; frame stems are f"{i:06d}" (= Point-VOS frame_id)
    videos/<dataset_id>/<video_id>.mp4            the same videos as mp4
    Oops/{train,val}.json                         PV-Oops-style point annotations
    Oops/videos/{train,val}/<video>.mp4
    Oops/pseudo_masks/<split>/<object_id>/<frame_id>.png     0/1 masks of the annotated frames (degraded GT)
    Oops/val_masks/<object_id>/<frame_id>.png     PV-Oops benchmark ground truth: true masks, 3 frames per object
    Kinetics/train.jsonl                          PV-Kinetics-style point annotations (their own videos)
    Kinetics/videos/train/<video>.mp4
    Kinetics/pseudo_masks/train/<object_id>/<frame_id>.png
    DAVIS/{JPEGImages,Annotations}/480p/<seq>/... + ImageSets/2017/{train,val}.txt
    YouTubeVOS/{train,valid}/{JPEGImages,Annotations}/<vid>/... + meta.json
    VNG/{train,val}/meta_expressions.json + extra_masks.json + vis_annotations.json
    COCO-PNG/png_coco_{train2017,val2017}.json + panoptic_{train2017,val2017}.json + panoptic PNGs and images

Dataset ids: ``synthetic_train``, ``synthetic_val`` (the Oops-like videos, also used for DAVIS / YouTube-VOS / VNG)
and ``synthetic_kinetics`` (the Kinetics-like videos, train only, as PV-Kinetics has no val split).
Object ids are ``md5("vng-synthetic/<seed>/<video_id>/<track_id>")`` (32 hex); mask label ``track_id`` = 1, 2, 3
in painting order (a higher id is drawn in front).

What is simplified on purpose (so users know what the sample data can and cannot test):

- The "annotator" is the ground truth: fg points are ACCEPTED, bg points REJECTED, and the 3 points per frame
  sampled on the object boundary are AMBIGUOUS (the paper's uncertain candidates, Sec. 3.2).
- Pseudo-masks are the ground-truth mask eroded or dilated by 1–2 px (a stand-in for DynaMITe/SAM from points).
- Captions come from templates: "A red circle moves to the left and bounces off the left wall, passing behind the
  blue square." Each narrative has one deliberately wrong ``noun_segments`` entry (a verb tagged as a noun), as the
  automatically tagged VidLN segments sometimes are.
"""
from vng.datasets.synthetic.annotations import (make_point_annotations, make_pseudo_masks, object_id_for,
                                                sample_object_points)
from vng.datasets.synthetic.coco_png import PNG_CATEGORIES, PNGSample, make_png_sample
from vng.datasets.synthetic.config import COLOURS, SHAPES, SampleDataConfig
from vng.datasets.synthetic.generate import SampleData, SampleVideo, generate_sample_data
from vng.datasets.synthetic.narratives import Mention, SceneNarrative, make_narrative
from vng.datasets.synthetic.scenes import BackgroundStyle, ObjectTrack, Scene, make_scene

__all__ = ["SampleDataConfig", "SampleData", "generate_sample_data", "SHAPES", "COLOURS", "PNG_CATEGORIES",
           "ObjectTrack", "BackgroundStyle", "Scene", "Mention", "SceneNarrative", "SampleVideo", "PNGSample",
           "make_scene", "make_narrative", "make_point_annotations", "make_pseudo_masks", "make_png_sample",
           "sample_object_points", "object_id_for"]
