"""ssm_jax: exact, fast training dynamics under class imbalance and loss re-weighting."""

from importlib.metadata import PackageNotFoundError, version

from . import analytic as analytic, losses as losses
from .analytic import learning_time_ratio as learning_time_ratio
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
    SSM as SSM,
    UFM as UFM,
    AbstractModel as AbstractModel,
    DeepLinear as DeepLinear,
)
from .objective import (
    AbstractObjective as AbstractObjective,
    Objective as Objective,
    TargetFit as TargetFit,
)
from .store import SweepStore as SweepStore
from .sweep import Flow as Flow, Train as Train, open_sweep as open_sweep, sweep as sweep
from .train import train as train
from .trajectory import STATUS as STATUS, Trajectory as Trajectory

try:
    __version__ = version("ssm_jax")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"
