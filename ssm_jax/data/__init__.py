"""The data: class imbalance (counts, class weights, label matrices and spectra), separable
Gaussian blobs and probe sets, labelled image sets and their splits (scikit-learn's digits,
the MNIST subset and files, CIFAR-10 files)."""

from .cifar10 import cifar10_folder as cifar10_folder, read_batch as read_batch
from .digits import (
    DEFAULT_PAIR as DEFAULT_PAIR,
    digit_pair as digit_pair,
    digits_images as digits_images,
    digits_set as digits_set,
    step_imbalanced_digits as step_imbalanced_digits,
)
from .image_sets import (
    IMAGE_SETS as IMAGE_SETS,
    folder_format as folder_format,
    image_set as image_set,
)
from .images import (
    ImageSplit as ImageSplit,
    LabelledImages as LabelledImages,
    class_pair as class_pair,
    step_imbalanced_split as step_imbalanced_split,
)
from .imbalance import (
    LongTailImbalance as LongTailImbalance,
    StepImbalance as StepImbalance,
    class_label_matrix as class_label_matrix,
    class_weights as class_weights,
    label_matrix as label_matrix,
    label_spectrum as label_spectrum,
    labels_from_counts as labels_from_counts,
)
from .mnist import idx_folder as idx_folder, mnist_subset as mnist_subset, read_idx as read_idx
from .separable import (
    BinaryData as BinaryData,
    augment_bias as augment_bias,
    gaussian_blobs as gaussian_blobs,
    grid_axes as grid_axes,
    importance_weights as importance_weights,
    mean_direction as mean_direction,
    probe_grid as probe_grid,
)
