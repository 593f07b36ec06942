"""CIFAR-10 from the python batches a user already has (`cifar-10-batches-py`: `data_batch_1`
.. `data_batch_5` and `test_batch`, each a pickled dict with b"data", (10000, 3072) uint8 rows
of red, green and blue 32x32 planes, and b"labels"). Pickles can run code when loaded: read
only files from a source you trust."""

from pathlib import Path
import pickle

import numpy as np

from .images import LabelledImages

CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck")
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
DEFAULT_PAIR = (3, 5)
"""cat vs dog, Byrd & Lipton's pair (label 1, the weighted class, is dog)."""


def _batch_folder(folder: Path) -> Path:
    for candidate in (folder, folder / "cifar-10-batches-py"):
        if (candidate / TEST_BATCH).is_file():
            return candidate
    raise ValueError(f"`{folder}` holds no `{TEST_BATCH}`, itself or in cifar-10-batches-py/: "
                     f"expected CIFAR-10's python batches ({', '.join(TRAIN_BATCHES)}, "
                     f"{TEST_BATCH}).")


def read_batch(path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch.

    **Arguments:**

    - `path`: the pickled batch.

    **Returns:** images (N, 3, 32, 32) uint8 and labels (N,) in 0..9. Raises ValueError naming
    the path when it is not such a batch.
    """
    path = Path(path)
    expected = 'a pickled dict with b"data" (N, 3072) uint8 and b"labels" (N labels in 0..9)'
    if not path.is_file():
        raise ValueError(f"`{path}` is not a file: expected {expected}.")
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
    except Exception as error:  # a damaged pickle raises almost anything
        raise ValueError(f"`{path}` could not be unpickled ({type(error).__name__}): expected "
                         f"{expected}.") from None
    data = batch.get(b"data") if isinstance(batch, dict) else None
    labels = np.asarray(batch.get(b"labels", ()) if isinstance(batch, dict) else ())
    if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2
            or data.shape[1] != 3072 or labels.shape != data.shape[:1]
            or not np.isin(labels, np.arange(10)).all()):
        raise ValueError(f"`{path}` is not a CIFAR-10 batch: expected {expected}.")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def cifar10_folder(folder) -> LabelledImages:
    """CIFAR-10 from its python batches: the five data batches are the training pool, the test
    batch the test pool.

    **Arguments:**

    - `folder`: `cifar-10-batches-py` or the folder holding it.

    **Returns:** a `LabelledImages` named "CIFAR-10". Raises ValueError naming the path and
    what was expected.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"`{folder}` is not a folder: expected cifar-10-batches-py or the "
                         "folder holding it.")
    folder = _batch_folder(folder)
    batches = [read_batch(folder / name) for name in TRAIN_BATCHES]
    test_images, test_labels = read_batch(folder / TEST_BATCH)
    return LabelledImages("CIFAR-10", np.concatenate([x for x, _ in batches]),
                          np.concatenate([y for _, y in batches]), CLASS_NAMES, test_images,
                          test_labels)
