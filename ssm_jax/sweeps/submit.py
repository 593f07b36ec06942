"""A sweep submitted as one job array: N shard jobs into one store, through a submitit
executor (SLURM, or subprocesses of this machine), with the plan fixed once before submitting
so that every shard keeps the same chunks; `ShardJobs` follows them (`shard_jobs`).

Every member is checked here, before anything is submitted or written (a `ValueError` names
the argument or the member), as `sweep` checks them."""

import math

from ..dynamics.base import objective_metrics
from ..dynamics.flow import Flow
from .batching._base import MAX_CHUNK
from .design_checks import check_design
from .executors import import_submitit
from .grid import AbstractDesign
from .problem import as_problem
from .shard_job import ShardJob
from .shard_jobs import ShardJobs
from .store import check_store, read_manifest, stored_chunks

CHUNKS_PER_SHARD = 8
"""Without `chunk_size`, members are chunked so that each shard has about this many chunks (at
most `MAX_CHUNK` members, and `max_batch`): a pre-empted shard loses at most one chunk's
work per device, and progress is read from the chunks done."""

_CHECKED = ("vectorized", "pad_to", "order_by", "predict", "class_groups")


def submit(make_problem, design: AbstractDesign, *, store, executor, shards: int,
           resume: bool = False, chunk_size: int | None = None,
           cpu_devices: int | None = None, **options) -> ShardJobs:
    """Submits a sweep as `shards` jobs of one array, each running shard i of N into `store`.

    **Arguments:**

    - `make_problem`, `design`: as for `sweep`; they travel to the jobs by pickle
      (cloudpickle), so a function defined in a script is fine.
    - `store`: the store folder, on a file system every job sees.
    - `executor`: a submitit executor, e.g. `submitit.AutoExecutor(folder="logs/%j")` with
      `update_parameters(timeout_min=..., slurm_partition=..., slurm_gpus_per_task=...,
      slurm_array_parallelism=...)`, or `submitit.LocalExecutor(...)` for subprocesses of
      this machine; `sweeps.executors.executor_named` makes the command line's.
    - `shards`: N, the number of jobs; chunk c is shard c mod N's.
    - `resume`: finish a sweep stored in `store`: only the shards that still own a chunk
      without a done marker are submitted (none, where every chunk is done).
    - `chunk_size`: members per chunk; default: the stored sweep's, else about
      `CHUNKS_PER_SHARD` chunks per shard (capped by `max_batch` and `MAX_CHUNK`). Every
      shard is given it, so all keep one plan.
    - `cpu_devices`: on CPU hosts, JAX CPU devices each job makes (`use_cpu_cores`); None
      leaves JAX's default (one), as on GPU nodes.
    - `options`: the other keywords of `sweep` (`t1`, `dynamics`, `metrics`, `max_batch`,
      `batching`, `seed`, `metadata`, ...); not `store`, `shard` or `progress`.

    **Returns:** `ShardJobs`: the jobs by shard, with `progress()`, `wait()` (which merges the
    store) and the jobs' ids and logs. Raises `ValueError` before anything is submitted or
    written where an argument, a member or the store is not allowed.
    """
    submitit = import_submitit()
    if not isinstance(executor, submitit.Executor):
        raise ValueError(f"`executor` = {executor!r} is not allowed: expected a submitit "
                         "executor, e.g. submitit.AutoExecutor(folder=...) (names such as "
                         "'slurm' are for the command line).")
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise ValueError(f"`shards` = {shards!r} is not allowed: expected an integer >= 1.")
    for name in ("store", "shard", "progress", "resume"):
        if name in options:
            raise ValueError(f"`{name}` is not allowed among the sweep's keywords of "
                             "`submit`: the jobs set it (give `store=` and `resume=` to "
                             "`submit` itself).")
    if not isinstance(design, AbstractDesign):
        raise ValueError(f"`design` = {design!r} is not allowed: expected an ssm_jax.Grid or "
                         "ssm_jax.Points.")
    path = check_store("store", store, resume)
    chunk_size = _chunk_size(path, design.size, shards, chunk_size, options.get("max_batch"))
    _check_members(make_problem, design, options)
    todo = _shards_to_run(path, shards, chunk_size)
    jobs = {}
    if todo:
        options = options | {"chunk_size": chunk_size}
        with executor.batch():  # one array
            submitted = [executor.submit(ShardJob(make_problem, design, path, (i, shards),
                                                  options, cpu_devices)) for i in todo]
        jobs = dict(zip(todo, submitted, strict=True))
    return ShardJobs(path, shards, jobs, executor)


def _chunk_size(path, size: int, shards: int, chunk_size, max_batch) -> int:
    """The chunk size every shard is given: the stored sweep's, as given, or the default."""
    manifest = read_manifest(path, "store")
    if manifest is not None:
        if chunk_size is not None and chunk_size != manifest["chunk_size"]:
            raise ValueError(f"`chunk_size` = {chunk_size!r} is not allowed: the sweep stored "
                             f"in '{path}' has chunks of {manifest['chunk_size']} members "
                             "(leave chunk_size out to keep them).")
        return manifest["chunk_size"]
    if chunk_size is not None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"`chunk_size` = {chunk_size!r} is not allowed: expected an "
                             "integer >= 1.")
        return min(chunk_size, max_batch or chunk_size, size)
    return max(1, min(math.ceil(size / (shards * CHUNKS_PER_SHARD)), max_batch or MAX_CHUNK,
                      MAX_CHUNK))


def _check_members(make_problem, design, options: dict) -> None:
    """Every member checked as `sweep` checks it, before anything is submitted."""
    dynamics = options.get("dynamics")
    if dynamics is None:
        if options.get("t1") is None:
            raise ValueError("Give `t1` (a gradient flow's final time) or `dynamics`.")
        dynamics = Flow(t1=options["t1"], num_saves=options.get("num_saves", 100))
    check_design(as_problem(make_problem), design, dynamics,
                 options.get("metrics", objective_metrics),
                 **{name: options.get(name, False if name == "vectorized" else None)
                    for name in _CHECKED})


def _shards_to_run(path, shards: int, chunk_size: int) -> list[int]:
    """The shards that own a chunk not yet done: all, where no sweep is stored."""
    manifest = read_manifest(path, "store")
    if manifest is None:
        return list(range(shards))
    total = math.ceil(len(manifest["order"]) / chunk_size)
    missing = set(range(total)) - stored_chunks(path, name="store")
    return sorted({c % shards for c in missing})
