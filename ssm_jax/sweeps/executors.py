"""The executors a sweep's shards are submitted with: submitit's, chosen by name at the command
line's edge only (`--submit local|slurm`). From Python, pass any submitit executor to
`submit` (`submitit.AutoExecutor`, `submitit.SlurmExecutor`, `submitit.LocalExecutor`), set
up with its own `update_parameters`; `executor_named` is the one place that maps the
command line's names and resources onto them.

submitit is an optional dependency (`pip install "ssm_jax[cluster]"`): it is imported when an
executor is made, so the package imports without it."""

from pathlib import Path

EXECUTORS = ("local", "slurm")
"""The names `--submit` takes: `local` runs each shard as a subprocess of this machine
(submitit's `LocalExecutor`), `slurm` as a task of one SLURM job array (`SlurmExecutor`)."""

LOCAL_TIMEOUT_MINUTES = 7 * 24 * 60
"""The time limit of a local shard when none is given."""

JOB_NAME = "ssm-jax-sweep"
"""The job name the executors of `executor_named` give (SLURM's `--job-name`)."""


def import_submitit():
    """submitit, or a `ValueError` saying how to install it.

    **Returns:** the `submitit` module.
    """
    try:
        import submitit
    except ImportError:
        raise ValueError("Submitting a sweep needs submitit, which is not installed: pip "
                         "install \"ssm_jax[cluster]\" (or pip install submitit).") from None
    return submitit


def executor_named(name: str, folder, *, gpus_per_task: int | None = None,
                   time_minutes: int | None = None, partition: str | None = None,
                   array_parallelism: int | None = None, option: str = "submit"):
    """The submitit executor a name stands for, with the resources of each shard's job.

    **Arguments:**

    - `name`: "local" (submitit's `LocalExecutor`: subprocesses of this machine) or "slurm"
      (`SlurmExecutor`: one job array; needs `srun` and `sbatch` on the PATH).
    - `folder`: where submitit keeps each job's pickles and logs (`%j` is the job id).
    - `gpus_per_task`: GPUs of each shard (SLURM's `--gpus-per-task`; locally, the GPUs each
      subprocess sees); None for none asked.
    - `time_minutes`: each shard's time limit (SLURM's `--time`; locally, the timeout).
    - `partition`: SLURM's `--partition` (ignored locally).
    - `array_parallelism`: at most this many shards run at once (SLURM's `--array=0-N%K`;
      locally every shard runs at once).
    - `option`: the name of `name` in messages (e.g. "--submit").

    **Returns:** a `submitit.Executor`. Raises `ValueError` naming the option, its value and
    what is allowed, before anything is made.
    """
    if name not in EXECUTORS:
        raise ValueError(f"`{option}` = {name!r} is not allowed: expected one of "
                         f"{', '.join(EXECUTORS)}.")
    for label, value in (("gpus_per_task", gpus_per_task), ("time_minutes", time_minutes),
                         ("array_parallelism", array_parallelism)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < (0 if label == "gpus_per_task" else 1)):
            least = 0 if label == "gpus_per_task" else 1
            raise ValueError(f"`{label}` = {value!r} is not allowed: expected an integer >= "
                             f"{least}.")
    if partition is not None and (not isinstance(partition, str) or not partition.strip()):
        raise ValueError(f"`partition` = {partition!r} is not allowed: expected a SLURM "
                         "partition's name.")
    submitit = import_submitit()
    folder = Path(folder).expanduser()
    if name == "local":
        executor = submitit.LocalExecutor(folder=folder)
        # submitit's local timeout is 2 minutes unless given: a shard runs until it ends.
        parameters = {"timeout_min": time_minutes or LOCAL_TIMEOUT_MINUTES,
                      "gpus_per_node": gpus_per_task}
    else:
        try:
            executor = submitit.SlurmExecutor(folder=folder)
        except RuntimeError:  # no srun: not a SLURM machine
            raise ValueError(f"`{option}` = 'slurm' is not allowed here: no `srun` on the "
                             "PATH; expected a SLURM login node (or submit with 'local').") \
                from None
        # One task per shard; SIGUSR2 90 s before the time limit (submitit's default), which
        # the shard's job turns into a clean stop, a checkpoint and a requeue.
        parameters = {"job_name": JOB_NAME, "ntasks_per_node": 1, "time": time_minutes,
                      "gpus_per_task": gpus_per_task, "partition": partition,
                      "array_parallelism": array_parallelism}
    executor.update_parameters(**{k: v for k, v in parameters.items() if v is not None})
    return executor
