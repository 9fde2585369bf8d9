"""A real Keras model trains on pyimgdir's tf.data output (the README's main use)."""

from __future__ import annotations

import numpy as np

import pyimgdir


def test_keras_model_fits_one_epoch(keras, make_tree):
    root = make_tree({"cats": 12, "dogs": 12, "birds": 8}, ext=[".jpg", ".png"])
    train, val = pyimgdir.image_dataset_from_directory(
        root, validation_split=0.25, subset="both", seed=1337, image_size=(32, 32), batch_size=8, verbose=False
    )
    assert len(train) == 3 and len(val) == 1
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Rescaling(1.0 / 255),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(len(train.class_names)),
        ]
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    # shuffle=False: the dataset shuffles itself (Keras warns otherwise, for its own loader too)
    history = model.fit(train, validation_data=val, epochs=2, verbose=0, shuffle=False)
    assert len(history.history["loss"]) == 2
    assert np.isfinite(history.history["loss"]).all()
    assert np.isfinite(history.history["val_loss"]).all()
    preds = model.predict(val, verbose=0)
    assert preds.shape == (len(val.file_paths), 3)
