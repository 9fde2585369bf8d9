"""Stage 2, order: Keras' global shuffle and split, then one permutation per epoch.

``file_paths`` reproduce Keras exactly (``np.random.RandomState(seed).shuffle`` of the
indexed order, then the validation split). Each epoch's order is a full permutation
derived from ``(seed, epoch)`` alone, so it is reproducible and the same on every worker.
"""

from __future__ import annotations


import numpy as np

from .options.constants import SEED_MASK
from .options.keras_compat import print_msg


def global_shuffle(n: int, seed) -> np.ndarray:
    """The permutation Keras applies to the indexed file list (and, separately, labels)."""
    perm = np.arange(n, dtype=np.int64)
    np.random.RandomState(seed).shuffle(perm)
    return perm


def split(indices: np.ndarray, validation_split, subset: str) -> np.ndarray:
    """Keras' get_training_or_validation_split, quirks included (num_val == 0 gives an
    empty training set and a full validation set)."""
    if not validation_split:
        return indices
    num_val = int(validation_split * len(indices))
    if subset == "training":
        print_msg(f"Using {len(indices) - num_val} files for training.")
        return indices[:-num_val]
    if subset == "validation":
        print_msg(f"Using {num_val} files for validation.")
        return indices[-num_val:]
    raise ValueError('`subset` must be either "training" ' f'or "validation", received: {subset}')


def epoch_permutation(n: int, seed: int, epoch: int, dtype=np.int64) -> np.ndarray:
    """A uniformly random permutation of range(n) determined by (seed, epoch). ``dtype``
    (np.uint32 when n < 2**32: half the memory) changes the type, not the values: the
    shuffle's draws depend only on n."""
    ss = np.random.SeedSequence([int(seed) & SEED_MASK, int(epoch), 0x7079696D])
    perm = np.arange(n, dtype=dtype)
    np.random.Generator(np.random.PCG64(ss)).shuffle(perm)
    return perm


def shard_size(n: int, count: int, remainder: str) -> int:
    """Samples each of `count` shards gets from `n`: equal for every shard."""
    if count <= 1:
        return n
    return -(-n // count) if remainder == "pad" else n // count


def shard_slice(order: np.ndarray, index: int, count: int, remainder: str) -> np.ndarray:
    """Shard `index` of `count` of one epoch's order: every count-th element from `index`.

    With ``remainder="pad"`` the order is first extended with its own beginning to a
    multiple of `count` (as torch's DistributedSampler does), so no file is left out and
    a few repeat; with ``"drop"`` the tail is cut, so a few files sit out this epoch
    (different ones each epoch when shuffling).
    """
    if count <= 1:
        return order
    n = len(order)
    if remainder == "pad":
        total = -(-n // count) * count
        if total > n:
            reps = -(-total // max(n, 1))
            order = np.concatenate([order] * reps)[:total] if n else order
    else:
        order = order[: n // count * count]
    return order[index::count]
