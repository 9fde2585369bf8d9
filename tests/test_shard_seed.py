"""A sharded, shuffled dataset needs an explicit seed on every sharding path: each shard
takes its part of one permutation, and with seed=None every process would draw its own."""

from __future__ import annotations

import pytest

import pyimgdir
from conftest import needs


@pytest.fixture
def tree(make_tree):
    return make_tree({"a": 3, "b": 3}, size_range=(10, 12))


def _call(root, **kw):
    kw = {"format": "numpy", **kw}
    return pyimgdir.image_dataset_from_directory(str(root), image_size=(8, 8), verbose=False, **kw)


def _check_message(e, source):
    text = str(e.value)
    assert source in text and "seed" in text and "shuffle=False" in text
    assert "overlap" in text and "never read" in text  # why


def test_shard_without_seed_refused(tree):
    with pytest.raises(ValueError) as e:
        _call(tree, shard=(1, 4))
    _check_message(e, "`shard`")


def test_shard_with_seed_or_without_shuffle_accepted(tree):
    a = _call(tree, shard=(0, 2), seed=3)
    b = _call(tree, shard=(1, 2), seed=3)
    assert len(a) == len(b) == 1
    _call(tree, shard=(0, 2), shuffle=False)
    _call(tree, shard=(0, 1))  # one shard: no permutation is shared


def test_resumed_state_supplies_the_seed(tree):
    ds = _call(tree, shard=(0, 2), seed=11)
    again = _call(tree, shard=(0, 2), initial_state=ds.state())
    assert again.state()["seed"] == 11


class _Context:  # what tf.distribute.InputContext exposes
    def __init__(self, i, n):
        self.input_pipeline_id, self.num_input_pipelines = i, n


def test_input_context_without_seed_refused(tree):
    with pytest.raises(ValueError) as e:
        _call(tree, input_context=_Context(0, 2))
    _check_message(e, "`input_context`")
    _call(tree, input_context=_Context(0, 1))  # one pipeline (MirroredStrategy on one host)


@pytest.mark.tf
def test_real_input_context_without_seed_refused(tree):
    import tensorflow as tf

    ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=2)
    with pytest.raises(ValueError) as e:
        _call(tree, input_context=ctx)
    _check_message(e, "`input_context`")


@needs("grain")
def test_grain_shard_options_without_seed_refused(tree):
    import grain

    with pytest.raises(ValueError) as e:
        _call(tree, shard=grain.sharding.ShardOptions(1, 2), format="grain")
    _check_message(e, "ShardOptions")
    ds = _call(tree, shard=grain.sharding.ShardOptions(1, 2), format="grain", seed=4)
    assert ds._source.shard_index == 1


@needs("torch")
def test_torch_without_seed_refused(tree):
    with pytest.raises(ValueError) as e:
        pyimgdir.TorchDataset(str(tree), image_size=(8, 8), rank=1, world_size=2)
    _check_message(e, "TorchDataset")
    pyimgdir.TorchDataset(str(tree), image_size=(8, 8), rank=1, world_size=2, seed=2)
