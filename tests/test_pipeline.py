"""Tests for the grain input pipeline (make_dataset) on the bouncing-shapes source."""

import json

import numpy as np
import pytest

from gan_jax.data.bouncing_shapes import BouncingShapes
from gan_jax.data.pipeline import default_data_config, make_dataset, make_source

TINY = dict(name="bouncing_shapes", num_frames=2, height=8, width=8, size_range=(2.0, 4.0))


def _take(iterator, count):
    return [next(iterator) for _ in range(count)]


def _assert_same_batches(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def _example_ids(source, batches):
    """Which source index each clip of ``batches`` is (clips are looked up by their bytes)."""
    lookup = {source[i]["video"].tobytes(): i for i in range(len(source))}
    assert len(lookup) == len(source), "fixture clips must be distinct"
    return [lookup[clip.tobytes()] for batch in batches for clip in batch["video"]]


def test_batches_have_the_promised_shapes():
    batch = next(make_dataset(TINY, batch_size=3, seed=0, process_index=0, process_count=1))
    assert set(batch) == {"video", "label"}
    assert batch["video"].shape == (3, 2, 8, 8, 3) and batch["video"].dtype == np.float32
    assert batch["label"].shape == (3,) and batch["label"].dtype == np.int32
    assert -1.0 <= batch["video"].min() and batch["video"].max() <= 1.0


def test_default_process_index_and_count_come_from_jax():
    iterator = make_dataset({**TINY, "channels": 1}, batch_size=2, seed=0)
    assert next(iterator)["video"].shape == (2, 2, 8, 8, 1)


def test_same_seed_same_batches_and_other_seed_differs():
    first = _take(make_dataset(TINY, batch_size=4, seed=3, process_index=0, process_count=1), 3)
    again = _take(make_dataset(TINY, batch_size=4, seed=3, process_index=0, process_count=1), 3)
    other = _take(make_dataset(TINY, batch_size=4, seed=4, process_index=0, process_count=1), 3)
    _assert_same_batches(first, again)
    assert not np.array_equal(first[0]["video"], other[0]["video"])


def test_state_round_trip_through_json_resumes_exactly():
    iterator = make_dataset(TINY, batch_size=4, seed=1, process_index=0, process_count=1)
    _take(iterator, 2)
    state = json.loads(json.dumps(iterator.get_state()))
    expected = _take(iterator, 3)
    resumed = make_dataset(TINY, batch_size=4, seed=1, process_index=0, process_count=1)
    resumed.set_state(state)
    _assert_same_batches(_take(resumed, 3), expected)


def test_worker_processes_give_the_same_batches_and_resume():
    # Two spawned workers: content must not depend on the worker layout, and the state of a
    # multi-process iterator must also survive a JSON round trip.
    config = {**TINY, "num_workers": 2, "prefetch": 1}
    in_process = _take(
        make_dataset(TINY, batch_size=2, seed=5, process_index=0, process_count=1), 5
    )
    pooled = make_dataset(config, batch_size=2, seed=5, process_index=0, process_count=1)
    try:
        head = _take(pooled, 2)
        state = json.loads(json.dumps(pooled.get_state()))
        tail = _take(pooled, 3)
    finally:
        pooled.close()
    _assert_same_batches(head + tail, in_process)
    resumed = make_dataset(config, batch_size=2, seed=5, process_index=0, process_count=1)
    try:
        resumed.set_state(state)
        _assert_same_batches(_take(resumed, 3), tail)
    finally:
        resumed.close()


def test_two_processes_get_disjoint_shards_covering_each_epoch():
    config = {**TINY, "length": 24, "num_epochs": 2}
    source = make_source(config)
    shards = []
    for process_index in range(2):
        batches = list(
            make_dataset(config, batch_size=4, seed=0, process_index=process_index, process_count=2)
        )
        assert len(batches) == 6  # 2 epochs x 24 examples / 2 processes / batch 4
        shards.append(_example_ids(source, batches))
    for epoch in range(2):
        first, second = (ids[12 * epoch : 12 * (epoch + 1)] for ids in shards)
        assert not set(first) & set(second)
        assert sorted(first + second) == list(range(24))
    # Each epoch is shuffled anew.
    assert shards[0][:12] != shards[0][12:]


def test_processes_get_equal_batch_counts_when_the_data_does_not_divide():
    config = {**TINY, "length": 25, "num_epochs": 1}
    counts = [
        len(list(make_dataset(config, batch_size=1, seed=0, process_index=i, process_count=2)))
        for i in range(2)
    ]
    assert counts == [12, 12]


def test_unshuffled_single_epoch_is_source_order():
    config = {**TINY, "length": 8, "num_epochs": 1, "shuffle": False}
    batches = list(make_dataset(config, batch_size=4, seed=0, process_index=0, process_count=1))
    assert _example_ids(make_source(config), batches) == list(range(8))


def test_bouncing_shapes_content_is_set_by_dataset_seed_not_by_seed():
    source = make_source({**TINY, "dataset_seed": 3}, seed=123)
    assert isinstance(source, BouncingShapes) and source.seed == 3


@pytest.mark.parametrize(
    "config, match",
    [
        ({"name": "mnist"}, "mnist"),
        ({}, "name"),
        ({**TINY, "hieght": 8}, "hieght"),
        ({**TINY, "height": 0}, "height"),
        ({**TINY, "channels": 2}, "channels"),
        ({**TINY, "num_workers": -1}, "num_workers"),
        ({**TINY, "num_epochs": 0}, "num_epochs"),
        ({**TINY, "size_range": (2.0, 40.0)}, "size_range"),
        ({"name": "video_folder"}, "root"),
        ({"name": "video_folder", "root": "/no/such/folder"}, "/no/such/folder"),
    ],
)
def test_bad_configs_name_the_key(config, match):
    with pytest.raises(ValueError, match=match):
        make_dataset(config, batch_size=2, seed=0, process_index=0, process_count=1)


def test_bad_process_or_batch_arguments():
    with pytest.raises(ValueError, match="process_index"):
        make_dataset(TINY, batch_size=2, seed=0, process_index=2, process_count=2)
    with pytest.raises(ValueError, match="batch_size"):
        make_dataset(TINY, batch_size=0, seed=0, process_index=0, process_count=1)
    with pytest.raises(ValueError, match="batch_size"):
        make_dataset(
            {**TINY, "length": 3, "num_epochs": 1},
            batch_size=2,
            seed=0,
            process_index=0,
            process_count=2,
        )


def test_default_configs_list_every_key():
    shapes = default_data_config("bouncing_shapes")
    assert shapes.name == "bouncing_shapes" and shapes.length == 2**20
    folder = default_data_config("video_folder")
    for key in ("root", "frame_stride", "target_fps", "too_short", "decode_errors", "clip_cache"):
        assert key in folder
    # A ConfigDict is accepted as well as a dict.
    shapes.update(num_frames=2, height=8, width=8, size_range=(2.0, 4.0))
    batch = next(make_dataset(shapes, batch_size=2, seed=0, process_index=0, process_count=1))
    assert batch["video"].shape == (2, 2, 8, 8, 3)
