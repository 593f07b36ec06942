"""ssm_jax: exact, fast training dynamics under class imbalance and loss re-weighting."""

from importlib.metadata import PackageNotFoundError, version

from . import analytic as analytic, data as data, losses as losses, problems as problems
from .analytic import learning_time_ratio as learning_time_ratio, max_margin as max_margin
from .data import gaussian_blobs as gaussian_blobs, importance_weights as importance_weights
from .flow import gradient_flow as gradient_flow, save_times as save_times
from .grid import Grid as Grid
from .imbalance import (
    LongTailImbalance as LongTailImbalance,
    StepImbalance as StepImbalance,
    class_label_matrix as class_label_matrix,
    class_weights as class_weights,
    label_matrix as label_matrix,
    label_spectrum as label_spectrum,
    labels_from_counts as labels_from_counts,
)
from .metrics import (
    class_means as class_means,
    learning_time as learning_time,
    mode_strengths as mode_strengths,
)
from .models import (
    CNN as CNN,
    MLP as MLP,
    SSM as SSM,
    UFM as UFM,
    AbstractModel as AbstractModel,
    DeepLinear as DeepLinear,
    Linear as Linear,
    TwoLayerReLU as TwoLayerReLU,
)
from .network_training import (
    NetworkData as NetworkData,
    train_network as train_network,
    train_networks as train_networks,
    training_setting as training_setting,
)
from .objective import (
    AbstractObjective as AbstractObjective,
    Objective as Objective,
    TargetFit as TargetFit,
)
from .separable_metrics import SeparableMetrics as SeparableMetrics
from .store import SweepStore as SweepStore
from .sweep import Flow as Flow, Train as Train, open_sweep as open_sweep, sweep as sweep
from .train import train as train
from .trajectory import STATUS as STATUS, Trajectory as Trajectory

try:
    __version__ = version("ssm_jax")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"
