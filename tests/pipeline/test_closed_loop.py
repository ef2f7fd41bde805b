"""The closed loop on the sample data: narratives → pipeline → simulated annotator → export → Oops-VNG rows → a short
Point-STCN training run on the release that learns (PV-Oops val J&F of a tiny model rises from ~4 to ~33 in 40
steps)."""

import dataclasses

import point_stcn as recipe  # recipes/ is on the path (conftest.py)
from vng.datasets.hf import load_oops_vng, to_object_annotation
from vng.datasets.synthetic import SampleDataConfig, generate_sample_data
from vng.io.pointvos import read_pv_annotations
from vng.io.tasks import read_tasks, write_verdicts
from vng.methods import FlowMethod
from vng.pipeline.candidates import collect_tasks
from vng.pipeline.prepare import prepare
from vng.pipeline.objects import ObjectConfig
from vng.pipeline.release import export_release
from vng.pipeline.simulation import simulate_tasks
from vng.pipeline.workdir import WorkDir
from vng.points import CandidateConfig
from vng.segmenters import GrabCutSegmenter


def test_narratives_to_a_release_that_point_stcn_learns_from(tmp_path):
    sample = tmp_path / "sample"
    generate_sample_data(sample, seed=0, config=SampleDataConfig(num_train_videos=4, num_val_videos=1,
                                                                 num_kinetics_videos=1, num_png_images=1))
    workdir = WorkDir(tmp_path / "work")
    reports = prepare(sample / "vidln" / "train.jsonl", sample / "videos", workdir, segmenter=GrabCutSegmenter(),
                      method=FlowMethod(), objects=ObjectConfig(dataset="Oops"),  # the sample stands for Oops
                      candidates=CandidateConfig(min_distance=5.0))  # 20 px at 480p
    assert not any(report.problems for report in reports) and reports[0].videos_done == 4
    collect_tasks(workdir)

    simulated = simulate_tasks(workdir, sample / "DAVIS" / "Annotations" / "480p")
    # the sample's objects are found: most foreground candidates lie on them, background ones off them
    assert simulated.precision.foreground_right > 0.5 and simulated.precision.background_right > 0.99
    write_verdicts(tmp_path / "verdicts.jsonl", simulated.events)
    exported = export_release(workdir, tmp_path / "verdicts.jsonl", tmp_path / "release", link_videos=True)
    release, = exported.files
    assert release == tmp_path / "release" / "Oops" / "train.json"
    result = exported.resolved
    tasks = read_tasks(workdir.tasks_dir)
    assert len(result.objects) == len(tasks) - len(simulated.skipped) > 10

    rows = load_oops_vng(tmp_path / "release", split="train", cache_dir=tmp_path / "cache")
    assert [to_object_annotation(row) for row in rows] == read_pv_annotations(release) == list(result.objects)
    for row in rows:  # the language link survives: the noun span names the object in its caption
        start, end = row["noun_span"]
        assert row["question"][start:end] == row["object_name"]

    config = recipe.sample_config(tmp_path / "run")
    stage = dataclasses.replace(config.stages[1], name="pipeline", steps=40, lr=2e-3, background_weight=4.0,
                                data=(recipe.DataSource("points", annotations=str(release),
                                                        videos=str(release.parent / "videos" / "train")),))
    config = dataclasses.replace(config, stages=(stage,), model=recipe.STCNConfig.tiny(point_radius=0.04),
                                 data_root=str(sample), sample_data=False, num_workers=0, log_every=10,
                                 checkpoint_every=1000, settings=(5,),
                                 validation={"pv_oops_val": config.validation["pv_oops_val"]})
    before, after = (evaluation.j_and_f for evaluation in recipe.main(config).evaluations)
    assert before < 0.1 and after > before + 0.15, (before, after)
