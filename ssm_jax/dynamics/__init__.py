"""The dynamics: gradient flow (diffrax) and discrete training (optax), each one traceable
body that single runs, sweeps, experiments and benchmarks share, returning a `Trajectory`."""

from .discrete import train as train
from .flow import gradient_flow as gradient_flow, save_times as save_times
from .network_training import (
    NetworkData as NetworkData,
    NetworkRun as NetworkRun,
    TrainSetting as TrainSetting,
    train_network as train_network,
    train_networks as train_networks,
    training_setting as training_setting,
)
from .trajectory import STATUS as STATUS, Trajectory as Trajectory
