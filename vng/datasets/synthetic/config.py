"""Sizes, counts and vocabularies of the sample data (shapes, colours, background tints, random streams)."""

from __future__ import annotations

from dataclasses import dataclass, field

from vng.points import CandidateConfig

# Shapes that stay distinct at 20–50 px and under rotation (a rotated square is not mistaken for a diamond because
# there is no diamond).
SHAPES = ("circle", "square", "triangle", "star", "cross")
# Saturated colours, far apart in hue, so that a caption's colour word is visible in the pixels; backgrounds are
# desaturated greys so that they never look like one of these.
COLOURS = {
    "red": (215, 35, 35),
    "green": (40, 175, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 210, 35),
    "purple": (145, 55, 195),
    "orange": (245, 135, 25),
}
# Tints of the grey backgrounds, named in the background actor's caption.
TINTS = {"grey": (0, 0, 0), "beige": (14, 6, -12), "bluish grey": (-10, -2, 12), "greenish grey": (-8, 9, -8)}
# Seed-sequence entry per source of videos: independent streams, so that train, val, Kinetics and COCO-PNG never
# share a video, and adding videos to one split leaves the others unchanged.
STREAMS = {"train": 0, "val": 1, "kinetics": 2, "png_train2017": 3, "png_val2017": 4}
EPOCH_MS = 1_650_000_000_000  # recordings "happen" in 2022, like the public VidLN release


@dataclass(frozen=True)
class SampleDataConfig:
    """Sizes and counts of the sample dataset. The defaults generate in a few seconds on one CPU core."""

    width: int = 160  # px; small for fast CPU training, divisible by 32 (stride-16/32 backbones need no padding)
    height: int = 128  # px; 5:4 keeps objects of 20-50 px well inside the frame
    num_frames: int = 20  # frames per video: >= 10 so that 10 frames can be annotated (Sec. 3.1), yet short
    fps: int = 10  # of the mp4 files; 2 s clips like a short Oops / Kinetics excerpt
    num_train_videos: int = 8  # Oops-like train videos (also DAVIS / YouTube-VOS / VNG train)
    num_val_videos: int = 4  # val videos: other seeds and other object combinations than train
    num_kinetics_videos: int = 4  # PV-Kinetics-style videos (train only: PV-Kinetics has no val split)
    num_png_images: int = 6  # COCO-PNG images per split (train2017, val2017)
    max_objects: int = 3  # objects per video: 1..max, distinct shapes and colours within a video
    min_radius: float = 12.0  # px, object size at the first frame; 12 px keeps >= 7 fg points 5 px apart
    max_radius: float = 22.0  # px; large enough to read texture, small enough to move and bounce in 160x128
    min_visible_area: int = 120  # px; every object stays this visible in every frame despite occlusion
    num_keyframes: int = 10  # VidLN keyframes per video (the public release has 10)
    keyframes_per_actor: int = 3  # keyframe_selection_indices per object actor (typical of VidLN)
    # 10 evenly spaced annotated frames per object (Sec. 3.1) and on each 7 fg / 10 bg / 3 uncertain candidates
    # (Sec. 3.2), at least 5 px apart: the paper's d = 20 px at 480p, scaled to 128 px high frames
    candidates: CandidateConfig = field(default_factory=lambda: CandidateConfig(min_distance=5.0))
    pseudo_mask_max_radius: int = 2  # px; pseudo-mask = GT eroded or dilated by 1..this (stand-in for DynaMITe)
    jpeg_quality: int = 95  # frames are JPEG like the real releases; high quality keeps colours clean

    def __post_init__(self) -> None:
        if self.width < 64 or self.height < 64 or self.width % 2 or self.height % 2:
            # mp4v crops odd sizes, which would shift every annotation
            raise ValueError(f"frames must be at least 64x64 with even sides, got {self.width}x{self.height}")
        if self.num_frames < 2:
            raise ValueError(f"num_frames must be >= 2, got {self.num_frames}")
        if not 1 <= self.max_objects <= min(len(SHAPES), len(COLOURS)):
            raise ValueError(f"max_objects must be in [1, {min(len(SHAPES), len(COLOURS))}], got {self.max_objects}")
        if not 0 < self.min_radius <= self.max_radius < min(self.width, self.height) / 4:
            raise ValueError("need 0 < min_radius <= max_radius < min(width, height) / 4")
        if not 1 <= self.keyframes_per_actor <= min(5, self.num_keyframes):
            # More would leave each trace segment too little of the subject's pause (~2 s) to be drawn in.
            raise ValueError(f"keyframes_per_actor must be in [1, {min(5, self.num_keyframes)}]")
        for name in ("num_train_videos", "num_val_videos", "num_kinetics_videos", "num_png_images", "num_keyframes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
