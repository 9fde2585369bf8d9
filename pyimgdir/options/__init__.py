"""Stage 0, options: the call checked in Keras' order and words (``checks``), resolved once into
the frozen :class:`~pyimgdir.options.spec.LoadSpec` every later stage reads; training-crop
options (``augment``), the constants several stages share, Keras' own helpers. Imports
nothing from the other stages."""
