"""`ssm-jax sweep`, `ssm-jax merge` and `ssm-jax plot`: a grid of runs from a configuration
file into a store (whole, or one shard of it), a sharded store checked and finished, and
figure F3 from a finished store."""

from pathlib import Path
import re
import threading
import time
from typing import Annotated

from rich.progress import BarColumn, Progress, TextColumn
import typer

from ._common import console, print_error
from .cluster import check_options, submit_sweep

F3_FILE = "F3_learning_time_ratio.png"
"""The file `ssm-jax plot` writes into the store's folder unless --out names another."""


def _summary(ds, stored_before: set[int], wall: float,
             shard: tuple[int, int] | None = None) -> str:
    """What this invocation computed (its chunks' compile and run seconds, which fit in the
    wall time), what was already stored or written by other shards, and how the members
    ended."""
    import numpy as np

    index = ds.chunk_index.values
    now = ~np.isin(index, sorted(stored_before))
    if shard is not None:  # the other shards' chunks were not computed here
        now &= index % shard[1] == shard[0]
    members = int(ds.chunk_size.values[now].sum())
    total = int(ds.chunk_size.values.sum())
    devices = len(set(ds.chunk_device.values[now].tolist()))
    spent = (f"compile {float(ds.chunk_compile_seconds.values[now].sum()):.1f} s, run "
             f"{float(ds.chunk_run_seconds.values[now].sum()):.1f} s"
             + (f", summed over {devices} devices" if devices > 1 else ""))
    line = f"{total} members: {members} computed in {wall:.1f} s ({spent})"
    if members < total:
        line += f", {total - members} already stored" + (
            "" if shard is None else " or written by the other shards")
    if ds.attrs.get("waste"):  # members waited for others (lockstep, or lanes' tails)
        line += f"; lane efficiency {1 - ds.attrs['waste']:.3f} ({ds.attrs['batching']})"
    return line + "; " + _statuses(ds)


def _statuses(ds) -> str:
    """How the members ended, counted."""
    from ..dynamics.trajectory import STATUS

    codes = ds.status.values
    counts = {word: int((codes == code).sum()) for code, word in enumerate(STATUS)}
    line = "status: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    return line + (" (metrics NaN after a member stopped)" if counts["ok"] < codes.size else "")


def _parse_shard(shard: str | None) -> tuple[int, int] | None:
    """`--shard I/N` as (I, N), checked."""
    if shard is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", shard)
    if match is None or not int(match[1]) < int(match[2]):
        raise typer.BadParameter(f"`--shard` = {shard!r} is not allowed: expected I/N with "
                                 "integers 0 <= I < N, e.g. 0/4 for the first of four shards.",
                                 param_hint="--shard")
    return int(match[1]), int(match[2])


def _stopped(stopped, config: Path, store: Path, shard: str | None) -> None:
    """Says what a stopped sweep kept and the command that finishes it, then leaves at once
    with 128 + the signal's number (a chunk still computing is abandoned, not waited for)."""
    import os
    import sys

    command = f"ssm-jax sweep {config} --out {store} --resume" + (
        f" --shard {shard}" if shard else "")
    print_error(f"Stopped by {stopped.signal_name}:",
                f"{stopped.members_kept} of {stopped.members_total} members are kept in "
                f"{store}. To finish the sweep, run: {command}")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(stopped.exit_code)


def _next_step(ds, out: str) -> str:
    """The figure to draw from the sweep, or how to read it where F3 cannot be drawn."""
    import numpy as np

    from ..plots.sweeps import f3_missing

    missing = f3_missing(ds)
    if missing is not None:
        return (f"no figure for this sweep (F3 needs {missing}); read it with "
                f"ssm_jax.open_sweep({out!r})")
    closed_form = bool(np.isfinite(ds.predicted_ratio.values).any())
    return (f"`ssm-jax plot {out}` draws figure F3"
            + ("" if closed_form else " (measured only: this loss has no closed form)"))


def sweep(
    config: Annotated[Path, typer.Argument(help="A sweep configuration (TOML).",
                                           metavar="CONFIG")],
    out: Annotated[str, typer.Option(help="The sweep's store folder.", metavar="FOLDER")],
    resume: Annotated[bool, typer.Option(help="Finish a stopped sweep in --out.")] = False,
    max_batch: Annotated[int | None, typer.Option(help="At most this many members per "
                                                  "compiled call.", metavar="N")] = None,
    shard: Annotated[str | None, typer.Option(
        help="Run only shard I of N (chunks c with c mod N = I) into --out, which the other "
        "shards may be writing too; `ssm-jax merge` finishes it.", metavar="I/N")] = None,
    cpu_devices: Annotated[int | None, typer.Option(
        help="On a CPU host, run chunks on this many CPU devices at once, one per core "
        "[default: the cores this process may use, or JAX_NUM_CPU_DEVICES].",
        metavar="N")] = None,
    submit: Annotated[str | None, typer.Option(
        help="Submit the sweep as one job array of --shards jobs through submitit: local "
        "(subprocesses here) or slurm; see docs/cluster.md.", metavar="local|slurm")] = None,
    shards: Annotated[int | None, typer.Option(help="With --submit: the number of shard "
                                               "jobs.", metavar="N")] = None,
    gpus_per_task: Annotated[int | None, typer.Option(help="With --submit: GPUs of each "
                                                      "shard.", metavar="G")] = None,
    time_limit: Annotated[int | None, typer.Option(
        "--time", help="With --submit: each shard's time limit; a shard that reaches it is "
        "requeued and resumes.", metavar="MINUTES")] = None,
    partition: Annotated[str | None, typer.Option(help="With --submit slurm: the partition.",
                                                  metavar="P")] = None,
    array_parallelism: Annotated[int | None, typer.Option(
        help="With --submit slurm: at most K shards at once.", metavar="K")] = None,
    wait: Annotated[bool, typer.Option(help="With --submit: follow the jobs (members done, "
                                       "time left, failed shards), then merge.")] = False,
    logs: Annotated[str | None, typer.Option(help="With --submit: submitit's folder of job "
                                             "logs [default: FOLDER.logs beside --out].",
                                             metavar="FOLDER")] = None,
):
    """Run a grid of gradient flows (or training runs) from a configuration file, writing
    each finished chunk to --out (or, with --shard, one shard of them; with --submit, as a
    job array of --shards jobs); see configs/ for examples."""
    from rich.progress import MofNCompleteColumn, TimeRemainingColumn

    from ..sweeps import config as config_module
    from ..sweeps.compilation_cache import enable_compilation_cache
    from ..sweeps.cpu_cores import use_cpu_cores
    from ..sweeps.run import sweep as run_sweep
    from ..sweeps.stopping import SweepStopped
    from ..sweeps.store import check_store, stored_chunks

    if max_batch is not None and max_batch < 1:
        raise typer.BadParameter(f"`--max-batch` = {max_batch} is not allowed: expected an "
                                 "integer >= 1.", param_hint="--max-batch")
    parts = _parse_shard(shard)
    resources = {"--gpus-per-task": gpus_per_task, "--time": time_limit,
                 "--partition": partition, "--array-parallelism": array_parallelism}
    check_options(submit, shards, wait, shard, resources)
    try:  # before any JAX operation: the CPU backend fixes its devices when it starts
        if submit is None:  # else each job makes its own
            use_cpu_cores(cpu_devices, name="--cpu-devices")
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--cpu-devices") from None
    try:
        cfg = config_module.load(config)
    except config_module.ConfigError as error:
        print_error(f"Config error in {config}:", error)
        raise typer.Exit(2) from None
    try:
        store = check_store("--out", out, resume or parts is not None)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--out") from None
    if submit is not None:
        options = dict(cfg.options)
        options["max_batch"] = max_batch or options["max_batch"]
        submit_sweep(cfg, config, store, submit=submit, shards=shards, resume=resume,
                     options=options, cpu_devices=cpu_devices, logs=logs, wait=wait,
                     resources=dict(zip(("gpus_per_task", "time_minutes", "partition",
                                         "array_parallelism"), resources.values(), strict=True)))
        return
    stored_before = stored_chunks(store)
    enable_compilation_cache()
    options = dict(cfg.options)
    options["max_batch"] = max_batch or options["max_batch"]
    start = time.perf_counter()
    columns = [TextColumn("sweep"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeRemainingColumn()]
    computed = threading.Event()  # some member of this run has finished
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("sweep", total=cfg.grid.size, rate="")

            first: list[tuple[int, float]] = []

            def report(done, total):
                # The rate of this run alone: from the members found done at the start.
                first.extend([] if first else [(done, time.perf_counter())])
                if done > first[0][0]:
                    computed.set()
                elapsed = time.perf_counter() - first[0][1]
                rate = (done - first[0][0]) / elapsed if elapsed > 0 else 0.0
                progress.update(task, completed=done, rate=f"{rate:.1f} traj/s" if rate else "")

            ds = run_sweep(cfg.make_problem, cfg.grid, dynamics=cfg.dynamics, store=store,
                           resume=resume, shard=parts, progress=report, metadata=cfg.raw,
                           **options)
    except SweepStopped as stopped:  # Ctrl-C or a scheduler's SIGTERM
        _stopped(stopped, config, store, shard)
    except Exception as error:  # every failure gets its line, and the way to finish the sweep
        # Refused before any compute (a check, a store that cannot be resumed, another
        # writer): nothing to finish, so no advice to resume.
        before_compute = isinstance(error, ValueError) and not computed.is_set()
        print_error(f"Cannot run {config}:" if before_compute else f"The sweep {config} stopped:",
                    error if isinstance(error, ValueError) else f"{type(error).__name__}: {error}")
        written = len(stored_chunks(store))
        if written and not before_compute:
            print_error(f"{written} finished chunks are kept in {store}:",
                        "run the same command with --resume to finish the sweep.")
        raise typer.Exit(2 if before_compute else 1) from None
    if ds is None:
        mine = "This process's" if parts is None else f"Shard {shard}'s"
        console.print(f"{mine} chunks are written to {store}; the others are not all done: "
                      f"`ssm-jax merge {store}` checks and finishes the store once they are.",
                      markup=False)
        return
    console.print(_summary(ds, stored_before, time.perf_counter() - start, parts),
                  markup=False)
    console.print(f"wrote {store}: the sweep's store; " + _next_step(ds, str(store)),
                  markup=False)


def merge(
    store: Annotated[Path, typer.Argument(help="A sweep's store folder, written by shards.",
                                          metavar="STORE")],
):
    """Finish a sweep whose shards (`ssm-jax sweep --shard I/N`) wrote into STORE: check that
    every chunk is done (else say which shards to rerun), consolidate the store's metadata and
    summarize it."""
    from ..sweeps.run import open_sweep
    from ..sweeps.store import check_finished

    try:
        check_finished(store, "STORE", consolidate=True)
        ds = open_sweep(store, name="STORE")
    except ValueError as error:
        print_error(f"Cannot merge {store}:", error)
        raise typer.Exit(2) from None
    console.print(f"{int(ds.chunk_size.sum())} members in {ds.sizes['chunk']} chunks, all "
                  f"done (compile {float(ds.chunk_compile_seconds.sum()):.1f} s, run "
                  f"{float(ds.chunk_run_seconds.sum()):.1f} s, summed over the chunks); "
                  f"{_statuses(ds)}", markup=False)
    console.print(f"merged {store}: " + _next_step(ds, str(store)), markup=False)


def plot(
    store: Annotated[Path, typer.Argument(help="A finished sweep's store folder.",
                                          metavar="STORE")],
    out: Annotated[str | None, typer.Option(
        help=f"The figure's file (its suffix picks the format); default STORE/{F3_FILE}.",
        metavar="FILE")] = None,
):
    """Figure F3: the learning-time ratio t_min/t_maj over (R, gamma), with the closed form
    the sweep recorded (`predicted_ratio`)."""
    import matplotlib

    matplotlib.use("Agg")
    from .. import _validate
    from ..plots.style import check_figure_path, save
    from ..plots.sweeps import learning_time_ratio_figure
    from ..sweeps.run import open_sweep

    target = store / F3_FILE if out is None else Path(out)
    try:  # before anything is read or drawn
        if out is not None and not out.strip():
            raise ValueError(f"`--out` = {out!r} is not allowed: expected a figure's file.")
        check_figure_path("--out", target)
        _validate.output_folder("--out", target.parent, files=(target.name,))
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--out") from None
    try:
        ds = open_sweep(store, name="STORE")
    except ValueError as error:
        print_error(f"Cannot plot {store}:", error)
        raise typer.Exit(2) from None
    try:
        fig = learning_time_ratio_figure(ds)
    except ValueError as error:
        print_error(f"Cannot draw F3 from {store}:", error)
        raise typer.Exit(2) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    save(fig, target)
    console.print(f"wrote {target}: figure F3, t_min/t_maj over (R, gamma) with the closed "
                  "form", markup=False)
