"""Stage 4, outputs: the batches exposed as numpy, ``tf.data``, Grain, PyTorch or Ray Data
datasets; each optional framework is imported in its own module only, when used."""
