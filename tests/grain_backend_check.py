"""Run as a script under one Keras backend (KERAS_BACKEND is fixed per process): loads a
small tree with Keras' format="grain" and pyimgdir's, and prints JSON with the element
types and the largest pixel difference per method; also whether pyimgdir's grain batches
equal its numpy batches (decoder="pillow"), i.e. the tensors wrap the right memory."""

import json
import sys
import warnings

import numpy as np


def main(directory: str) -> None:
    import keras
    from keras.src.utils import image_dataset_utils

    import pyimgdir

    out = {"backend": keras.backend.backend(), "methods": {}}
    for method in ("bilinear", "nearest", "bicubic", "lanczos3", "area"):
        # (unshuffled: the elements then come in file_paths order; test_grain.py checks the order)
        kw = dict(image_size=(20, 28), batch_size=4, shuffle=False, interpolation=method, verbose=False)
        try:
            keras.ops.image.resize(np.zeros((2, 2, 1), np.float32), size=(1, 1), interpolation=method)
        except ValueError:
            try:
                pyimgdir.image_dataset_from_directory(directory, format="grain", **kw)
                out["methods"][method] = "accepted by pyimgdir, refused by Keras"
            except ValueError:
                out["methods"][method] = "refused by both"
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            k = list(image_dataset_utils.image_dataset_from_directory(directory, format="grain", **kw))
            ds = pyimgdir.image_dataset_from_directory(directory, format="grain", **kw)
            p = list(ds)  # all held at once: a tensor wrapping a reused buffer would show
        ours = np.concatenate([np.asarray(x) for x, _ in p])
        ref = np.concatenate([x for x, _ in pyimgdir.image_dataset_from_directory(
            directory, format="numpy", decoder="pillow", dtype="float32", **kw)])
        kimg = np.concatenate([np.asarray(x) for x, _ in k])
        out["methods"][method] = dict(
            types=[type(k[0][0]).__name__, type(p[0][0]).__name__, type(k[0][1]).__name__, type(p[0][1]).__name__],
            dtypes=[str(k[0][0].dtype), str(p[0][0].dtype), str(k[0][1].dtype), str(p[0][1].dtype)],
            shapes=[list(k[0][0].shape), list(p[0][0].shape)],
            labels_equal=len(k) == len(p) and bool(all(np.array_equal(np.asarray(a[1]), np.asarray(b[1])) for a, b in zip(k, p))),
            equals_numpy_format=bool(np.array_equal(ours, ref)),
            max_diff=float(np.abs(kimg.astype(np.float64) - ours).max()),
            mean_diff=float(np.abs(kimg.astype(np.float64) - ours).mean()),
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
