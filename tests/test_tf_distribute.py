"""tf.distribute with the real engines: MirroredStrategy over two logical CPU devices and
MultiWorkerMirroredStrategy with two worker processes on 127.0.0.1, both through
distribute_datasets_from_function with input_context sharding."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import photo_like, write_image

pytestmark = pytest.mark.tf
N = 24


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    rng = np.random.default_rng(17)
    root = tmp_path_factory.mktemp("dist") / "data"
    for i in range(N):
        write_image(root / f"c{i % 3}" / f"{i:02d}.jpg", photo_like(rng, 20, 20))
    return root


COMMON = textwrap.dedent(
    """
    import json, os, sys
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    import keras
    import pyimgdir

    def make_model():
        model = keras.Sequential([
            keras.Input((16, 16, 3)), keras.layers.Rescaling(1 / 255.0),
            keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
        model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model
    """
)

MIRRORED = COMMON + textwrap.dedent(
    """
    root, out = sys.argv[1], sys.argv[2]
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    shards = []

    def dataset_fn(ctx):
        ds = pyimgdir.image_dataset_from_directory(
            root, image_size=(16, 16), batch_size=ctx.get_per_replica_batch_size(8), seed=3,
            input_context=ctx, verbose=False)
        shards.append((ctx.input_pipeline_id, ctx.num_input_pipelines, len(ds)))
        return ds

    dist_ds = strategy.distribute_datasets_from_function(dataset_fn)
    with strategy.scope():
        model = make_model()
    hist = model.fit(dist_ds, epochs=2, steps_per_epoch=3, verbose=0)
    json.dump({"replicas": strategy.num_replicas_in_sync, "shards": shards,
               "loss": hist.history["loss"]}, open(out, "w"))
    """
)

MULTI_WORKER = COMMON + textwrap.dedent(
    """
    # Keras' fit() does not accept a MultiWorkerMirroredStrategy distributed dataset, so
    # this trains with the strategy's own custom-loop API (strategy.run).
    root, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    info = {}

    def dataset_fn(ctx):
        ds = pyimgdir.image_dataset_from_directory(
            root, labels=list(range(n)), image_size=(16, 16), seed=3, verbose=False,
            batch_size=ctx.get_per_replica_batch_size(8), input_context=ctx, shard_remainder="drop")
        info["shard"] = [ctx.input_pipeline_id, ctx.num_input_pipelines]
        info["batches"] = len(ds)
        return ds

    dist_ds = strategy.distribute_datasets_from_function(dataset_fn)
    with strategy.scope():
        model = make_model()
        optimizer = keras.optimizers.SGD(0.01)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")

    @tf.function
    def train_step(x, y):
        def step(x, y):
            with tf.GradientTape() as tape:
                per_example = loss_fn(y % 3, model(x, training=True))
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=8)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss
        return strategy.reduce("SUM", strategy.run(step, args=(x, y)), axis=None)

    seen, losses = [], []
    for x, y in dist_ds:  # one epoch
        for local in strategy.experimental_local_results(y):
            seen.extend(local.numpy().tolist())
        losses.append(float(train_step(x, y)))
    info.update(files=seen, loss=losses)
    json.dump(info, open(out, "w"))
    """
)


UNSHARDED = COMMON + textwrap.dedent(
    """
    # model.fit(ds) under MultiWorkerMirroredStrategy distributes an unsharded dataset with
    # experimental_distribute_dataset: each worker reads and decodes every file and keeps its
    # share. pyimgdir warns at the first batch, naming the cost and the recipe; a dataset
    # made per worker with input_context (the recipe) decodes only its share, silently.
    import warnings
    root, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    info = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = pyimgdir.image_dataset_from_directory(root, image_size=(16, 16), batch_size=8, seed=3, verbose=False)
        dist = strategy.experimental_distribute_dataset(ds)
        next(iter(dist))
        info["unsharded"] = [(w.category.__name__, str(w.message)) for w in caught
                             if w.category.__name__ == "MultiWorkerDecodeWarning"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        def dataset_fn(ctx):
            return pyimgdir.image_dataset_from_directory(
                root, image_size=(16, 16), seed=3, verbose=False, format="tf",
                batch_size=ctx.get_per_replica_batch_size(8), input_context=ctx)

        dist = strategy.distribute_datasets_from_function(dataset_fn)
        next(iter(dist))
        info["sharded"] = [str(w.message) for w in caught if w.category.__name__ == "MultiWorkerDecodeWarning"]
    json.dump(info, open(out, "w"))
    """
)


def free_ports(k):
    """k ports free on 127.0.0.1 a moment ago. TensorFlow's gRPC servers bind the ports named
    in TF_CONFIG themselves and refuse to share them (no SO_REUSEPORT), so they cannot be held
    for them: another process may take one first, and run_workers is then retried."""
    socks = []
    for _ in range(k):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)  # all bound at once: k different ports
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def run_workers(script, tree, tmp_path):
    """Runs the two workers; returns (return codes, their stderr)."""
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs, errs = [], []
    try:
        for i in range(2):
            err = open(tmp_path / f"worker{i}.err", "w+")
            errs.append(err)
            env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}))
            procs.append(subprocess.Popen([sys.executable, str(script), str(tree), str(tmp_path / f"worker{i}.json"),
                                           str(N)], env=env, stderr=err))
        codes = [p.wait(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    texts = []
    for err in errs:
        err.seek(0)
        texts.append(err.read())
        err.close()
    return codes, texts


def test_mirrored_strategy_two_logical_cpus(tree, tmp_path):
    script, out = tmp_path / "mirrored.py", tmp_path / "mirrored.json"
    script.write_text(MIRRORED)
    subprocess.run([sys.executable, str(script), str(tree), str(out)], check=True, timeout=300)
    result = json.loads(out.read_text())
    assert result["replicas"] == 2
    assert len(result["loss"]) == 2 and all(np.isfinite(result["loss"]))
    # one input pipeline on one worker feeds both replicas
    assert [s[:2] for s in result["shards"]] == [[0, 1]]


def test_multi_worker_mirrored_two_processes(tree, tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(MULTI_WORKER)
    # Should a worker's port have been taken between free_ports and its gRPC server binding
    # it, the pair is started again on new ones (a bounded number of times).
    for attempt in range(3):
        codes, errs = run_workers(script, tree, tmp_path)
        if codes == [0, 0] or not any("Could not start gRPC server" in e or "Address already in use" in e
                                      for e in errs):
            break
    assert codes == [0, 0], "\n".join(e[-3000:] for e in errs)
    results = [json.loads((tmp_path / f"worker{i}.json").read_text()) for i in range(2)]
    assert sorted(tuple(r["shard"]) for r in results) == [(0, 2), (1, 2)]
    a, b = (r["files"] for r in results)
    assert len(a) == len(b) == N // 2 and results[0]["batches"] == results[1]["batches"]
    assert not set(a) & set(b)  # disjoint
    assert set(a) | set(b) == set(range(N))  # together every file (N is a multiple of 2)
    assert all(len(r["loss"]) == r["batches"] and np.isfinite(r["loss"]).all() for r in results)


def test_multi_worker_unsharded_dataset_warns(tree, tmp_path):
    script = tmp_path / "unsharded.py"
    script.write_text(UNSHARDED)
    for attempt in range(3):
        codes, errs = run_workers(script, tree, tmp_path)
        if codes == [0, 0] or not any("Could not start gRPC server" in e or "Address already in use" in e
                                      for e in errs):
            break
    assert codes == [0, 0], "\n".join(e[-3000:] for e in errs)
    for i in range(2):
        r = json.loads((tmp_path / f"worker{i}.json").read_text())
        assert len(r["unsharded"]) == 1, r  # once, at the first batch
        text = r["unsharded"][0][1]
        assert "2 workers" in text and "2x the decoding" in text
        assert "distribute_datasets_from_function" in text and "input_context=ctx" in text
        assert r["sharded"] == []
