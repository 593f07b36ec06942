"""`ssm-jax sweep CONFIG --out STORE --submit local|slurm --shards N`: the sweep as one job
array of N shard jobs through submitit, optionally waited for (members done of total, the
time left, failed shards named with their job ids and logs) and merged."""

from pathlib import Path
import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
import typer

from ._common import console, print_error


def check_options(submit, shards, wait, shard, resources: dict) -> None:
    """The cluster options, checked before anything is read or submitted.

    **Arguments:**

    - `submit`, `shards`, `wait`, `shard`: the options as given.
    - `resources`: {option as typed: value} of the job resources.

    **Returns:** nothing; a `typer.BadParameter` naming the option, its value and what is
    allowed.
    """
    from ..sweeps.executors import EXECUTORS

    if submit is None:
        given = {k: v for k, v in {"--shards": shards, **resources}.items() if v is not None}
        if wait or given:
            name = "--wait" if wait else next(iter(given))
            raise typer.BadParameter(f"`{name}` is only allowed with --submit "
                                     f"({'|'.join(EXECUTORS)}).", param_hint=name)
        return
    if submit not in EXECUTORS:
        raise typer.BadParameter(f"`--submit` = {submit!r} is not allowed: expected one of "
                                 f"{', '.join(EXECUTORS)}.", param_hint="--submit")
    if shard is not None:
        raise typer.BadParameter("`--shard` is not allowed with --submit: --shards N submits "
                                 "every shard.", param_hint="--shard")
    if shards is None or shards < 1:
        raise typer.BadParameter(f"`--shards` = {shards} is not allowed: expected an integer "
                                 ">= 1 (the number of jobs).", param_hint="--shards")
    for name, value in resources.items():
        least = 0 if name == "--gpus-per-task" else 1
        if isinstance(value, int) and value < least:
            raise typer.BadParameter(f"`{name}` = {value} is not allowed: expected an integer "
                                     f">= {least}.", param_hint=name)
        if name == "--partition" and value is not None and not value.strip():
            raise typer.BadParameter(f"`{name}` = {value!r} is not allowed: expected a SLURM "
                                     "partition's name.", param_hint=name)


def submit_sweep(cfg, config: Path, store: Path, *, submit: str, shards: int, resume: bool,
                 options: dict, cpu_devices, resources: dict, logs, wait: bool) -> None:
    """Submits the configured sweep as one array of shard jobs; with `wait`, follows and
    merges it.

    **Arguments:**

    - `cfg`: the loaded `SweepConfig`; `config`: its file, for messages.
    - `store`: the checked store folder.
    - `submit`: "local" or "slurm"; `shards`: N.
    - `resume`: submit only the shards with chunks left.
    - `options`: the sweep's keywords (the configuration's, with --max-batch).
    - `cpu_devices`: --cpu-devices, or None.
    - `resources`: gpus_per_task, time_minutes, partition, array_parallelism.
    - `logs`: submitit's folder, or None for STORE's sibling `STORE.logs`.
    - `wait`: whether to wait, then merge.

    **Returns:** nothing; exits 2 on a refusal, 1 when shards failed.
    """
    from ..sweeps.executors import executor_named
    from ..sweeps.shard_jobs import ShardsFailed
    from ..sweeps.submit import submit as submit_shards

    folder = Path(logs) if logs else store.with_name(store.name + ".logs")
    try:
        executor = executor_named(submit, folder / "%j", option="--submit", **resources)
        jobs = submit_shards(cfg.make_problem, cfg.grid, dynamics=cfg.dynamics,
                             metadata=cfg.raw, store=store, executor=executor, shards=shards,
                             resume=resume, cpu_devices=cpu_devices, **options)
    except ValueError as error:
        print_error(f"Cannot submit {config}:", error)
        raise typer.Exit(2) from None
    if not jobs.jobs:
        console.print(f"Every chunk of {store} is done: `ssm-jax merge {store}` finishes it.",
                      markup=False)
        return
    ids = ", ".join(f"{i}/{shards}: {job.job_id}" for i, job in jobs.jobs.items())
    console.print(f"submitted {len(jobs.jobs)} shard jobs ({submit}) into {store}: {ids}; "
                  f"logs in {folder}", markup=False, soft_wrap=True)
    if not wait:
        console.print(f"Once they end, `ssm-jax merge {store}` checks and finishes the store "
                      "(a failed shard is run again by the same command with --resume).",
                      markup=False)
        return
    columns = [TextColumn("shards"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[states]}"), TimeRemainingColumn()]
    named: set[int] = set()
    start = time.perf_counter()
    try:
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("shards", total=cfg.grid.size, states="")

            def report(now):
                for i in sorted(set(now.failed) - named):  # as soon as it is known
                    named.add(i)
                    print_error("Shard failed:", now.failed[i])
                counts = {}
                for state in now.states.values():
                    counts[state] = counts.get(state, 0) + 1
                bar.update(task, completed=now.members_done,
                           states=", ".join(f"{v} {k.lower()}" for k, v in counts.items()))

            ds = jobs.wait(progress=report, poll_seconds=2.0)
    except ShardsFailed as error:
        print_error(f"The sweep {config} is unfinished:", error)
        print_error("To run the shards with chunks left:",
                    f"ssm-jax sweep {config} --out {store} --submit {submit} --shards "
                    f"{shards} --resume --wait")
        raise typer.Exit(1) from None
    except ValueError as error:  # the store does not check
        print_error(f"Cannot merge {store}:", error)
        raise typer.Exit(2) from None
    console.print(f"{int(ds.chunk_size.sum())} members done by {shards} shards in "
                  f"{time.perf_counter() - start:.1f} s; merged {store}", markup=False)
