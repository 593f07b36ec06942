"""The dynamics: gradient flow (diffrax) and discrete training (optax), each one traceable
body (`AbstractDynamics.run`) that single runs, sweeps, experiments and benchmarks share,
returning a `Trajectory`."""

from .base import AbstractDynamics as AbstractDynamics, objective_metrics as objective_metrics
from .class_affine import ClassAffine as ClassAffine
from .coordinates import AbstractCoordinates as AbstractCoordinates, Parameters as Parameters
from .discrete import Train as Train, scan_records as scan_records, train as train
from .erk import Unrolled as Unrolled, unrolled as unrolled
from .events import (
    AbstractEvent as AbstractEvent,
    SampledSteadyState as SampledSteadyState,
    SteadyState as SteadyState,
)
from .flow import (
    Flow as Flow,
    coordinates_named as coordinates_named,
    gradient_flow as gradient_flow,
    save_times as save_times,
)
from .lane_layout import (
    AbstractLaneLayout as AbstractLaneLayout,
    Flat as Flat,
    Leaves as Leaves,
)
from .network_training import (
    NetworkData as NetworkData,
    NetworkObjective as NetworkObjective,
    NetworkRun as NetworkRun,
    TrainSetting as TrainSetting,
    run_network as run_network,
    train_network as train_network,
    training_setting as training_setting,
)
from .trajectory import STATUS as STATUS, Trajectory as Trajectory
