"""Sweeps: designs (a grid, or points), problems, batchings (map, lockstep vmap, refill lanes),
vectorized builds, padding per size bucket, chunks over devices, hosts and shards, a
resumable zarr store, TOML configurations, and one labelled dataset."""

from .batching import (
    AbstractBatching as AbstractBatching,
    Map as Map,
    Refill as Refill,
    Vmap as Vmap,
)
from .cpu_cores import use_cpu_cores as use_cpu_cores
from .grid import Grid as Grid
from .padding import pad_examples as pad_examples
from .points import Points as Points
from .problem import AbstractProblem as AbstractProblem
from .problems import ImbalanceProblem as ImbalanceProblem, imbalance_problem as imbalance_problem
from .run import open_sweep as open_sweep, sweep as sweep
from .store import SweepStore as SweepStore
