"""Stage 3, batches: the core's decoded, resized batches for each epoch's order
(``source``), optionally served from a sample cache (``cache``)."""
