"""STCN / Point-STCN speed: inference frames per second on DAVIS sequences, and training clips per second.

Inference (issue 6, §5): 480p, one object given by its first-frame mask, top-k 20, a memory frame every 5 frames, the
video's frames decoded into memory before the clock starts (IO excluded), ``torch.cuda.synchronize`` before each
reading. fp32 and fp16 autocast run side by side in the same process, each after one unmeasured warm-up pass, so
their ratio is measured on the same machine::

    python benchmarks/stcn_speed.py --davis ../shared/data/davis2016-val --device cuda            # random weights
    python benchmarks/stcn_speed.py --davis DAVIS --checkpoint stcn.pth --device cuda --compile   # official weights
    .venv/bin/python benchmarks/stcn_speed.py --davis ../shared/data/davis2016-val --sequences blackswan \\
        --size 240 --train-steps 2 --train-size 192 --batch-size 2                              # a CPU smoke run

The reference STCN implementation runs at 104 FPS (fp32) and 119 FPS (autocast) on an H100 on the default five
sequences (blackswan, car-shadow, dog, goat, soapbox). The speed does not depend on the weights' values, so
without ``--checkpoint`` the full STCN (ResNet-50 keys, ResNet-18 values) runs with random weights.

Training (``--train-steps``): STCN's training pass (3-frame clips, ``--train-size``² crops, batch ``--batch-size``,
bootstrapped cross-entropy, Adam) on random clips, in fp32 and under bf16 / fp16 autocast; clips per second after
one warm-up step.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from vng.methods.stcn import STCNInferenceConfig, STCNSession
from vng.io.masks import read_mask_png
from vng.io.video import RenderedVideo, Video, list_frame_files
from vng.losses import bootstrapped_cross_entropy
from vng.models.stcn import STCN, STCNConfig, load_stcn

SEQUENCES = ("blackswan", "car-shadow", "dog", "goat", "soapbox")


def in_memory(folder: Path) -> RenderedVideo:
    """A sequence's frames decoded once into memory, so that the timed loop reads no file."""
    return RenderedVideo.from_frames(list(Video.open(folder)), name=str(folder))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_sequence(model: STCN, video: RenderedVideo, mask: np.ndarray, config: STCNInferenceConfig) -> float:
    """Seconds to segment the whole video forward from its first-frame mask."""
    session = STCNSession(model, video, config=config)
    session.add_mask(0, 1, mask)
    synchronize(model_device(model))
    start = time.perf_counter()
    for _ in session.propagate():
        pass
    synchronize(model_device(model))
    return time.perf_counter() - start


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def inference(model: STCN, davis: Path, sequences: list[str], size: int, compile_: bool) -> None:
    videos = {name: in_memory(davis / "JPEGImages" / "480p" / name) for name in sequences}
    masks = {name: read_mask_png(list_frame_files(davis / "Annotations" / "480p" / name, suffixes=(".png",))[0]) > 0
             for name in sequences}
    frames = sum(len(video) for video in videos.values())
    print(f"inference: {len(sequences)} sequences, {frames} frames, shorter side {size}, top-k 20, memory every 5")
    print(f"{'precision':<10}" + "".join(f"{name:>12}" for name in sequences) + f"{'all':>10}")
    for precision in ("fp32", "autocast"):
        config = STCNInferenceConfig(size=size, top_k=20, memory_every=5, autocast=precision == "autocast",
                                     compile=compile_)
        first = sequences[0]
        time_sequence(model, videos[first], masks[first], config)  # warm-up: kernels, allocator, compilation
        seconds = {name: time_sequence(model, videos[name], masks[name], config) for name in sequences}
        print(f"{precision:<10}" + "".join(f"{len(videos[n]) / seconds[n]:12.1f}" for n in sequences)
              + f"{frames / sum(seconds.values()):10.1f}  FPS")


def train_step(model: STCN, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
               dtype: torch.dtype | None, images: torch.Tensor, masks: torch.Tensor, target: torch.Tensor) -> None:
    """One optimizer step of STCN's training pass; ``dtype`` None = fp32, else autocast to it."""
    device_type = images.device.type
    with torch.autocast(device_type, dtype=dtype or torch.float32, enabled=dtype is not None):
        logits = model(images, masks).logits.flatten(0, 1)
        loss = bootstrapped_cross_entropy(logits.float(), target, 0, start_warm=0, end_warm=1)[0]
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)


def training(model: STCN, steps: int, size: int, batch_size: int) -> None:
    device = model_device(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
    model.train()
    generator = torch.Generator(device="cpu").manual_seed(0)
    images = torch.randn(batch_size, 3, 3, size, size, generator=generator).to(device)
    masks = (torch.rand(batch_size, 1, size, size, generator=generator) > 0.7).float().to(device)
    target = (torch.rand(batch_size * 2, size, size, generator=generator) > 0.7).long().to(device)
    dtypes = {"fp32": None}
    if device.type == "cuda":
        dtypes.update({"bf16 autocast": torch.bfloat16, "fp16 autocast": torch.float16})
    print(f"training: batch {batch_size} of 3-frame {size}² clips, bootstrapped CE, Adam")
    for name, dtype in dtypes.items():
        scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
        batch = (images, masks, target)
        train_step(model, optimizer, scaler, dtype, *batch)  # warm-up
        synchronize(device)
        start = time.perf_counter()
        for _ in range(steps):
            train_step(model, optimizer, scaler, dtype, *batch)
        synchronize(device)
        seconds = time.perf_counter() - start
        print(f"{name:<14} {steps * batch_size / seconds:8.2f} clips/s  ({seconds / steps * 1000:.0f} ms a step)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--davis", type=Path, required=True, help="DAVIS root (JPEGImages/480p, Annotations/480p)")
    parser.add_argument("--sequences", nargs="*", default=list(SEQUENCES))
    parser.add_argument("--checkpoint", type=Path, help="our checkpoint folder or an official STCN .pth (default: "
                        "the full STCN with random weights)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=480, help="shorter side at inference")
    parser.add_argument("--compile", action="store_true", help="torch.compile the encoders and decoder (CUDA)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--train-steps", type=int, default=0, help="timed training steps (0: no training run)")
    parser.add_argument("--train-size", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = (load_stcn(args.checkpoint, device=device) if args.checkpoint
             else STCN(STCNConfig(), load_pretrained_parts=False).to(device))
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"STCN speed on {where}, torch {torch.__version__}, "
          f"{'checkpoint ' + str(args.checkpoint) if args.checkpoint else 'random weights'}")
    inference(model.eval(), args.davis, args.sequences, args.size, args.compile)
    if args.train_steps:
        training(model, args.train_steps, args.train_size, args.batch_size)


if __name__ == "__main__":
    main(sys.argv[1:])
