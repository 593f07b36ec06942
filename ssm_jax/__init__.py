"""ssm_jax: exact, fast training dynamics under class imbalance and loss re-weighting.

The package reads left to right along the data flow: `data` (imbalance, separable, digits)
-> `losses`, `models` -> `objective` -> `dynamics` (gradient flow, discrete training) ->
`metrics` and `analytic` (what runs record, and the closed forms they are held to) ->
`sweeps` (grids of runs) -> `results`, `plots`, `experiments`, `bench` -> `cli`.
"""

from importlib.metadata import PackageNotFoundError, version

from . import (
    analytic as analytic,
    data as data,
    losses as losses,
    schedules as schedules,
    sweeps as sweeps,
)
from .analytic import learning_time_ratio as learning_time_ratio, max_margin as max_margin
from .data import (
    LongTailImbalance as LongTailImbalance,
    StepImbalance as StepImbalance,
    class_label_matrix as class_label_matrix,
    class_weights as class_weights,
    gaussian_blobs as gaussian_blobs,
    importance_weights as importance_weights,
    label_matrix as label_matrix,
    label_spectrum as label_spectrum,
    labels_from_counts as labels_from_counts,
)
from .dynamics import (
    STATUS as STATUS,
    AbstractCoordinates as AbstractCoordinates,
    AbstractDynamics as AbstractDynamics,
    ClassAffine as ClassAffine,
    Flow as Flow,
    NetworkData as NetworkData,
    Parameters as Parameters,
    SampledSteadyState as SampledSteadyState,
    SteadyState as SteadyState,
    Train as Train,
    Trajectory as Trajectory,
    Unrolled as Unrolled,
    gradient_flow as gradient_flow,
    save_times as save_times,
    train as train,
    train_network as train_network,
    training_setting as training_setting,
)
from .experiments.network_runs import train_networks as train_networks
from .metrics import (
    SeparableMetrics as SeparableMetrics,
    class_means as class_means,
    learning_time as learning_time,
    mode_strengths as mode_strengths,
)
from .models import (
    CNN as CNN,
    MLP as MLP,
    SSM as SSM,
    UFM as UFM,
    AbstractLinearPredictor as AbstractLinearPredictor,
    AbstractModel as AbstractModel,
    DeepLinear as DeepLinear,
    Linear as Linear,
    TwoLayerReLU as TwoLayerReLU,
)
from .objective import (
    AbstractObjective as AbstractObjective,
    Objective as Objective,
    TargetFit as TargetFit,
)
from .schedules import (
    AbstractWeightSchedule as AbstractWeightSchedule,
    ConstantWeights as ConstantWeights,
    RampedWeights as RampedWeights,
    SwitchedWeights as SwitchedWeights,
)
from .sweeps import (
    Grid as Grid,
    Points as Points,
    SweepStore as SweepStore,
    open_sweep as open_sweep,
    sweep as sweep,
    use_cpu_cores as use_cpu_cores,
)

try:
    __version__ = version("ssm_jax")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"
