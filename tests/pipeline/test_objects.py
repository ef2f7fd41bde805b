"""Stage 1: exactly which objects hand-written narratives give (merging, stop words, referents told apart), stable
ids, keyframe names → decoded frames, Oops-QA questions, and the per-video files with bad videos skipped."""

import json

import numpy as np
import pytest
from stories import FRAME_SIZE, NUM_FRAMES, actor, line, narrative, write_clip

from vng.io.common import FormatError, Location
from vng.io.masks import rle_decode, rle_encode
from vng.io.pipeline import read_traced_objects
from vng.language.nouns import load_spacy
from vng.pipeline.objects import (KeyframeNaming, ObjectConfig, make_objects, narrative_objects,
                                  question_object)
from vng.pipeline.workdir import StageReport, WorkDir, video_key
from vng.traces import rasterise_trace
from vng.types import LocationQuestion, VideoRef

VIDEO = VideoRef("clip", "clip.mp4", num_frames=NUM_FRAMES, width=FRAME_SIZE[0], height=FRAME_SIZE[1])


@pytest.fixture(scope="module")
def nlp():
    return load_spacy()


def described(objects):
    return [(obj.actor_name, obj.object_name, obj.mentions, obj.keyframe) for obj in objects]


def test_repeated_mentions_merge_and_direction_words_are_dropped(kitchen, nlp):
    report = StageReport("objects")
    objects = narrative_objects(kitchen, VIDEO, nlp=nlp, report=report)
    # "cake" twice is one object, localised by its larger run (the second mention's, on keyframe "000009");
    # "left" names no object; the background actor is left out
    assert described(objects) == [("Woman", "woman", ((2, 7),), 2), ("Woman", "cake", ((21, 25), (47, 51)), 9),
                                  ("Woman", "table", ((63, 68),), 5)]
    cake = objects[1]
    np.testing.assert_array_equal(rle_decode(cake.trace), rasterise_trace(line(5, 40, 30), FRAME_SIZE, line_width=3))
    assert cake.trace_area == 38 * 3 and cake.keyframe_name == "000009" and cake.noun_span == (21, 25)
    assert (cake.question, cake.question_hash, cake.source, cake.dataset, cake.split) == (
        kitchen.actor_narratives[0].caption, "", "narratives", "toy", "train")
    assert report.notes == {"nouns": 5, "nouns merged": 1, "nouns naming no object": 1}
    # ids: 32 hex, distinct, and the same on a rerun
    ids = [obj.object_id for obj in objects]
    assert len(set(ids)) == 3 and all(len(i) == 32 for i in ids)
    assert [obj.object_id for obj in narrative_objects(kitchen, VIDEO, nlp=nlp)] == ids
    with_background = narrative_objects(kitchen, VIDEO, nlp=nlp, config=ObjectConfig(include_background=True))
    assert described(with_background)[3:] == [("background", "wall", ((35, 39),), 5)]


def test_other_and_first_mark_another_referent_of_the_same_noun(nlp):
    tigers = narrative(
        actor("Tiger one", "A brown tiger with black stripes is fighting with the other tiger.",
              {"tiger": [(0, line(5, 20, 10))], "stripes": [(0, line(5, 10, 12))], "tiger#2": [(1, line(30, 60, 20))]}),
        actor("Tiger two", "Another brown tiger is fighting with the first tiger.",
              {"tiger": [(1, line(30, 50, 20))], "tiger#2": [(2, line(5, 15, 10))]}))
    objects = narrative_objects(tigers, VIDEO, nlp=nlp)
    assert described(objects) == [("Tiger one", "tiger", ((8, 13),), 2), ("Tiger one", "stripes", ((25, 32),), 2),
                                  ("Tiger one", "tiger", ((60, 65),), 5), ("Tiger two", "tiger", ((14, 19),), 5),
                                  ("Tiger two", "tiger", ((47, 52),), 9)]
    assert len({obj.object_id for obj in objects}) == 5


def test_a_group_of_people_is_the_people_and_compounds_merge_by_lemma(nlp):
    story = narrative(
        actor("Group of people", "A group of people carry the traffic cone and drop the traffic cones.",
              {"group": [(0, line(0, 60, 5))], "people": [(0, line(5, 20, 10))], "cone": [(1, line(5, 10, 10))],
               "cones": [(2, line(5, 30, 20))]}))
    assert described(narrative_objects(story, VIDEO, nlp=nlp)) == [
        ("Group of people", "people", ((11, 17),), 2), ("Group of people", "traffic cone", ((28, 40), (54, 67)), 9)]
    # the stop lists are configuration: without them "group" is an object of its own
    loose = ObjectConfig(partitive_nouns=frozenset())
    assert [obj.object_name for obj in narrative_objects(story, VIDEO, nlp=nlp, config=loose)] == [
        "group", "people", "traffic cone"]


def test_nouns_without_a_trace_are_no_objects(nlp):
    story = narrative(actor("Dog", "A dog chases a ball.", {"dog": [(0, line(5, 20, 10))]}))
    report = StageReport("objects")
    assert [obj.object_name for obj in narrative_objects(story, VIDEO, nlp=nlp, report=report)] == ["dog"]
    assert report.notes["referents without a trace"] == 1


def test_vidln_noun_segments_can_be_the_nouns(kitchen, nlp):
    woman = kitchen.actor_narratives[0]
    segments = type(woman)(**{**woman.__dict__, "noun_segments": ((0, 7), (19, 25), (43, 51))})
    story = narrative(segments)
    objects = narrative_objects(story, VIDEO, nlp=nlp, config=ObjectConfig(noun_source="noun_segments"))
    assert [(obj.object_name, obj.mentions) for obj in objects] == [("A woman", ((0, 7),)),
                                                                  ("a cake", ((19, 25), (43, 51)))]


@pytest.mark.parametrize("naming, name, index", [
    (KeyframeNaming(), "img_0000005", 4),  # OVIS counts its frames from 1
    (KeyframeNaming(), "000025", 25),  # plain numbers are 0-based, as Point-VOS frame ids
    (KeyframeNaming.counted_from(1), "000025", 24),
    (KeyframeNaming.counted_from(0), "img_0000005", 5),
])
def test_keyframe_names_map_to_decoded_frames(naming, name, index):
    assert naming.frame_index(name) == index


def test_keyframes_that_cannot_be_matched_are_located_errors(kitchen, nlp):
    with pytest.raises(ValueError, match="matches no naming rule"):
        KeyframeNaming().frame_index("frame_a")
    with pytest.raises(ValueError, match="counted from 1"):
        KeyframeNaming().frame_index("img_0000000")
    past_end = narrative(*kitchen.actor_narratives, keyframes=("000002", "000005", "000012"))
    with pytest.raises(FormatError) as error:
        narrative_objects(past_end, VIDEO, nlp=nlp, location=Location("n.jsonl", 3, record=1))
    assert error.value.field == "keyframe_names[2]" and error.value.location.line == 3
    assert "is frame 12, but clip.mp4 decodes to 12 frames" in str(error.value)
    unnamed = narrative(*kitchen.actor_narratives, keyframes=("000002", "kf5", "000009"))
    with pytest.raises(FormatError, match="'kf5' matches no naming rule"):
        narrative_objects(unnamed, VIDEO, nlp=nlp)


def test_a_location_question_is_one_object_localised_by_its_mask():
    trace = np.zeros((FRAME_SIZE[1], FRAME_SIZE[0]), bool)
    trace[10:13, 5:30] = True
    question = LocationQuestion("train/clip", "q1", "Who throws the egg?", 7, rle_encode(trace), "man")
    obj = question_object(question, VIDEO)
    assert (obj.object_name, obj.question, obj.question_hash, obj.keyframe, obj.trace_area, obj.noun_span) == (
        "man", "Who throws the egg?", "q1", 7, 75, None)
    assert (obj.dataset, obj.split, obj.source) == ("Oops", "train", "oops-qa")
    assert question_object(question, VIDEO).object_id == obj.object_id
    named = LocationQuestion("train/clip", "q1", "Who?", "000007", rle_encode(trace))
    assert question_object(named, VIDEO).keyframe == 7
    with pytest.raises(FormatError, match="the trace is 32x48"):
        question_object(LocationQuestion("v", "q2", "Who?", 0, rle_encode(trace[:, :32])), VIDEO)
    with pytest.raises(FormatError, match="trace is empty") as error:
        question_object(LocationQuestion("v", "q3", "Who?", 0, rle_encode(trace & False)), VIDEO)
    assert error.value.field == "trace"
    with pytest.raises(FormatError, match="is frame 12"):
        question_object(LocationQuestion("v", "q4", "Who?", 12, rle_encode(trace)), VIDEO)


def test_make_objects_writes_a_file_per_video_and_skips_missing_ones(narrative_files, tmp_path):
    path, videos = narrative_files
    workdir = WorkDir(tmp_path / "work")
    report = make_objects(path, videos, workdir)
    assert (report.videos_done, report.objects, len(report.problems)) == (1, 3, 1)
    assert report.problems[0].video == "gone"
    assert "video 'toy_train/gone' not found; tried" in report.problems[0].message
    objects = read_traced_objects(workdir.objects_file(video_key("clip")))
    assert [obj.object_name for obj in objects] == ["woman", "cake", "table"]
    assert objects[0].video_path == str(videos / "toy_train" / "clip.mp4") and objects[0].num_frames == NUM_FRAMES
    # a rerun keeps the finished video and tries the missing one again
    again = make_objects(path, videos, workdir)
    assert (again.videos_done, again.videos_kept, len(again.problems)) == (0, 1, 1)
    # sharded over two processes, each takes its own videos and together they take all
    shares = [make_objects(path, videos, WorkDir(tmp_path / "sharded"), process_index=i, num_processes=2)
              for i in (0, 1)]
    assert sum(r.videos_done + len(r.problems) for r in shares) == 2


def test_unreadable_videos_and_bad_records_are_reported_by_file_and_line(narrative_files, tmp_path):
    path, videos = narrative_files
    (videos / "gone.mp4").write_bytes(b"not a video")
    lines = path.read_text().splitlines()
    record = json.loads(lines[0])
    record["actor_narratives"][0]["traces"][0][0]["kf_idx"] = 7
    path.write_text("\n".join([json.dumps(record), lines[1], "{not json"]) + "\n")
    report = make_objects(path, videos, WorkDir(tmp_path / "work"))
    messages = sorted(problem.message for problem in report.problems)
    assert len(messages) == 3 and report.videos_done == 0
    assert any("narratives.jsonl:1: record 1: field 'actor_narratives[0].traces[0][0].kf_idx'" in m for m in messages)
    assert any("gone.mp4: OpenCV" in m for m in messages)
    assert any("narratives.jsonl:3: malformed JSON" in m for m in messages)


def test_make_objects_from_oops_qa_finds_videos_with_or_without_the_split_prefix(tmp_path):
    trace = np.zeros((FRAME_SIZE[1], FRAME_SIZE[0]), bool)
    trace[20:24, 10:30] = True
    question = {"question_hash": "h1", "question": "What falls?", "trace_frame": 3, "trace": rle_encode(trace)}
    (tmp_path / "questions.json").write_text(json.dumps({"train/clip": [question], "dog": [question],
                                                         "gone": [question]}))
    write_clip(tmp_path / "videos" / "clip.mp4")  # the release's "train/clip" without its split folder
    write_clip(tmp_path / "videos" / "train" / "dog.mp4")  # and "dog" inside one
    workdir = WorkDir(tmp_path / "work")
    report = make_objects(tmp_path / "questions.json", tmp_path / "videos", workdir, kind="oops-qa")
    assert (report.videos_done, report.objects) == (2, 2)
    assert [p.video for p in report.problems] == ["gone"] and "train/gone.mp4" in report.problems[0].message
    clip = read_traced_objects(workdir.objects_file(video_key("train/clip")))[0]
    assert (clip.video_name, clip.question_hash, clip.keyframe, clip.trace_area) == ("train/clip", "h1", 3, 80)
