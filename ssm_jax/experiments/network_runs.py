"""Batches of the digits networks' training runs (seeds and settings) through the sweeps'
batching: one compiled call for a whole grid of runs, each run `dynamics.run_network`."""

import equinox as eqx
import jax

from .._timing import timed_call
from ..dynamics.network_training import (
    NetworkData,
    NetworkRun,
    TrainSetting,
    check_training,
    network_dynamics,
    recorded_steps,
    run_network,
)
from ..models.networks import AbstractNetwork
from ..sweeps.batching import Vmap
from ..sweeps.batching.memberwise import AbstractMemberwise, run_members


def _member(shared, arrays):
    """One run of the batch: the network's arrays, setting and key; the rest shared."""
    data, dynamics, network_static = shared
    network, setting, key = arrays
    recorded, final = run_network(eqx.combine(network, network_static), data, setting, key,
                                  dynamics)
    return recorded, eqx.filter(final, eqx.is_array)


def train_networks(networks: AbstractNetwork, data: NetworkData, settings: TrainSetting,
                   steps: int, *, keys, record_every: int = 1, batch_size: int | None = None,
                   precision: str = "highest",
                   batching: AbstractMemberwise | None = None) -> NetworkRun:
    """Trains a stack of networks (seeds and settings, e.g. from `init_networks` and `stack`)
    in one compiled call; run i is exactly `train_network(networks[i], data, settings[i], ...,
    key=keys[i])`.

    **Arguments:** as for `train_network`, with a leading axis on `networks`, `settings` and
    `keys`, and:

    - `batching`: how the runs share the call, `Vmap()` (default: in lockstep, each step one
      batched operation) or `Map()` (one after another).

    **Returns:** a `NetworkRun` with a leading run axis on its metrics and final networks.
    """
    sizes = {jax.tree_util.tree_leaves(x)[0].shape[0] for x in (settings, keys)}
    sizes.add(jax.tree_util.tree_leaves(eqx.filter(networks, eqx.is_array))[0].shape[0])
    if len(sizes) != 1:
        raise ValueError(f"`networks`, `settings` and `keys` have leading sizes "
                         f"{sorted(sizes)}: expected one size, the number of runs.")
    batching = Vmap() if batching is None else batching
    if not isinstance(batching, AbstractMemberwise):
        raise ValueError(f"`batching` = {batching!r} is not allowed: expected "
                         "ssm_jax.sweeps.Vmap() or Map().")
    arrays, static = eqx.partition(networks, eqx.is_array)
    check_training(eqx.combine(jax.tree_util.tree_map(lambda x: x[0], arrays), static), data,
                   settings)
    dynamics = network_dynamics(data, steps, record_every, batch_size, precision)
    with jax.default_matmul_precision(dynamics.precision):
        (recorded, final), compile_s, run_s = timed_call(
            run_members, _member, (data, dynamics, static), (arrays, settings, keys), batching)
    return NetworkRun(recorded_steps(dynamics), recorded, eqx.combine(final, static),
                      compile_s, run_s)
