"""Stage 1, sources: which files, with which labels, and their bytes. ``index`` applies
Keras' class-folder rules to a local walk (``local``, the core's parallel walk) or to an
object-store listing (``remote``); ``feeder`` fetches an epoch's objects ahead of the decode
threads; ``validate`` decodes every file once."""
