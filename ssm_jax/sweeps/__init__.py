"""Sweeps: a grid of settings, ready-made problems, padding to one shape, batched runs over
devices and hosts, a resumable store, TOML configurations, and one labelled dataset."""

from .grid import Grid as Grid
from .padding import pad_examples as pad_examples
from .problems import imbalance_problem as imbalance_problem
from .run import open_sweep as open_sweep, sweep as sweep
from .store import SweepStore as SweepStore
