"""Every GPU measurement the benchmarks still lack, in one call of about 8 minutes on one GPU,
written to `--out DIR` as `accelerator.json` (rewritten after every step, so a run cut short
keeps what finished) and `accelerator.log`.

    python benchmarks/accelerator.py --out $OUT               # on the GPU, about 8 minutes
    python benchmarks/accelerator.py --out /tmp/acc --dry-run # tiny sizes on a CPU, < 1 minute

Sections, each with a time budget (seconds, `--budgets`); a step that would not fit in what
is left of its budget (predicted from the step before it, linearly in members) is skipped
with the reason recorded, and a section that fails records its error while the next goes on:

- `environment`: device, versions, command, GPU memory statistics.
- `smoke`: a float64 subset of the test suite on the GPU (refill lanes equal single runs,
  padded equal unpadded and one compilation per size bucket, class-affine coordinates,
  weight schedules), pytest in a subprocess (`-n 0 -q -x`): counts and wall time. No float32
  subset: tests/conftest.py enables float64 for every test unconditionally (no variable it
  reads turns that off), and the tests' tolerances are float64's; the W2 section's accuracy
  check is the float32 check of the sweep against single runs on the GPU.
- `w2`: workload W2 (class-level SSM, k = 10, d = 16; `w2_class_ssm.py`) at 4,096, 65,536
  and 1,048,576 configurations through `w2_scale.sweep_path` with the default batching and
  with each alternative (`Map()`, `Vmap()`, `Refill(lanes=...)`), beside the naive
  `jax.vmap(diffrax.diffeqsolve)`: traj/s, us per member-step, lane efficiency, compile
  seconds, the process's peak GPU memory so far, and members checked against
  `gradient_flow` (`check_accuracy`, float32).
- `w1`: workload W1 (UFM, k = 10, d = 32, R in 1..100; `w1.py`) at B = 4,096: the sweep in
  both coordinates ("parameters", "class_affine"; `w1_scale.sweep_paths`), the naive vmap and
  torchdiffeq on the same GPU (`peers.torchdiffeq_path`, on the first `--torch-members`
  members: its saved states of the whole padded batch would not fit), each path's error in
  class progress against a float64 Dopri8 reference (`w1.reference`) on the first members,
  and the naive vmap and torchdiffeq tightened until their error is at most the sweep's
  (matched accuracy).
- `networks`: the real-network experiments at their full settings (`ssm-jax run digits
  --experiment reweighting` and `--experiment importance`, run from Python as
  ssm_jax/cli/experiments.py runs them, without writing netCDF), timed.
- `precision`: float32 W2 with `Flow(precision="highest")` against `precision="default"`
  (TF32 on GPUs): steps, time, and the difference between the two and from `gradient_flow`.

No zarr or netCDF4 is needed: `import ssm_jax` imports zarr only when a sweep store is used
(`sweeps/store.py`) and netCDF4 only when a netCDF file is written, and this script does
neither (the GPU image has neither package).

JAX may take at most `XLA_PYTHON_CLIENT_MEM_FRACTION` of the GPU (0.6 unless set), so that
torch has room beside it.
"""

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.6")

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

import diffrax  # noqa: E402
import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402
import w1  # noqa: E402
from w1 import RTOL, member_arrays, padded_problems, reference, w1_points  # noqa: E402
from w1_scale import FIXED, sweep_paths, timed_sweep  # noqa: E402
from w2_class_ssm import (  # noqa: E402
    ATOL,
    MAX_STEPS,
    SAVES,
    check_accuracy,
    cost_key,
    lean_metrics,
    make_builder,
    w2_configs,
    w2_problem,
)
from w2_scale import sweep_path  # noqa: E402

import ssm_jax as sj  # noqa: E402
from ssm_jax._timing import timed_call  # noqa: E402
from ssm_jax.sweeps.config import ConfiguredProblem  # noqa: E402
from ssm_jax.sweeps.vectorized import build_batch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SMOKE_TESTS = ("tests/test_sweep_refill.py", "tests/test_refill.py", "tests/test_buckets.py",
               "tests/test_class_affine.py", "tests/test_schedules.py")
BUDGETS = dict(smoke=110, w2=150, w1=110, networks=60, precision=30)
"""Seconds per section on the GPU: with start-up, about 8 minutes in all."""
SECTIONS = ("environment", *BUDGETS)


class Budget:
    """Seconds left to a section, and whether a step predicted to take `seconds` fits."""

    def __init__(self, seconds: float):
        self.end = time.perf_counter() + seconds

    def left(self) -> float:
        return self.end - time.perf_counter()

    def skip(self, predicted: float) -> str | None:
        """None if `predicted` seconds fit, else the reason to skip, for the report."""
        if predicted <= self.left():
            return None
        return f"skipped: predicted {predicted:.0f} s, {max(self.left(), 0):.0f} s of budget left"


def gpu_memory() -> dict:
    """The first device's memory statistics in GB (peak since the process began), or a note
    where the backend keeps none (CPUs)."""
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" not in stats:
        return {"memory": "no memory_stats on this backend"}
    return {f"{name}_gb": stats[name] / 2**30 for name in
            ("peak_bytes_in_use", "bytes_in_use", "bytes_limit") if name in stats}


def checked(*args) -> dict:
    """`check_accuracy(*args)`, or its error where it fails (a learning time reached by one
    run and not the other fails it): a failed check must not end the section."""
    try:
        return check_accuracy(*args)
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}"}


def naive_solve(params, objectives, static, ts, progress, rtol=RTOL, atol=ATOL):
    """`w1.naive_solve` on members stacked already (W2's million members cannot go through a
    Python list), timed. Returns (a function of no arguments giving the saves and each
    member's steps, its compile seconds)."""
    start = time.perf_counter()
    run = w1.naive_solve(params, objectives, static, ts, progress, rtol, atol, MAX_STEPS)
    return run, time.perf_counter() - start


def naive_row(run, compile_s, members: int) -> tuple[dict, np.ndarray]:
    """Times a `naive_solve` run (one call; it is compiled ahead). Returns its row and saves."""
    (saves, steps), _, run_s = timed_call(run)
    steps = np.asarray(steps)
    return ({"path": "naive jax.vmap(diffeqsolve)", "members": members, "compile_s": compile_s,
             "run_s": run_s, "traj_per_s": members / run_s, "mean_steps": float(steps.mean()),
             "max_steps": int(steps.max()), "lockstep_waste": 1 - steps.mean() / steps.max(),
             "us_per_member_step": 1e6 * run_s / steps.sum(), **gpu_memory()},
            np.asarray(saves))


def w2_naive(configs, k, dim, t1):
    """The naive vmap on W2's members, built by the sweep's vectorized build."""
    builder, static = make_builder(k, dim)
    params, objective = builder(*(configs[n] for n in ("ratio", "power", "init_scale", "seed")))
    run, compile_s = naive_solve(params, objective, static, sj.save_times(t1, SAVES),
                                 lambda m, o: lean_metrics(m, o)["class_progress"])
    return naive_row(run, compile_s, configs["seed"].size)[0]


def section_w2(rec, save, budget, args):
    """W2 at each size, every path; a path is not run at a size its smaller run predicts
    will not fit. Accuracy is checked at the first size."""
    # "map" last (one member after another is slowest on a GPU), on at most --map-configs.
    paths = ["auto", f"refill:{args.lanes}", "vmap", "naive", "map"]
    rec.update(paths=paths, rows=[], checks=[], skipped=[])
    last = {}  # path -> (members, seconds) of its last run
    for size in args.w2_configs:
        first = size == args.w2_configs[0]
        for path in paths:
            count = min(size, args.map_configs) if path == "map" and first else size
            configs = w2_configs(count)
            members = np.random.default_rng(1).choice(count, min(args.check, count), False)
            if first and budget.left() <= 0:
                rec["skipped"].append({"path": path, "members": count,
                                       "reason": "skipped: no budget left"})
                continue
            if path in last:
                done, seconds = last[path]
                if reason := budget.skip(seconds * size / done):
                    rec["skipped"].append({"path": path, "members": size, "reason": reason})
                    save()
                    continue
            start = time.perf_counter()
            if path == "naive":
                row = w2_naive(configs, 10, 16, args.t1)
            else:
                name, _, lanes = path.partition(":")
                row, results = sweep_path(configs, 10, 16, args.t1, name,
                                          int(lanes) if lanes else None, args.chunk,
                                          repeats=args.repeats if first and path != "map" else 0)
                row.update(gpu_memory())
                if first:
                    rec["checks"].append({"path": row["path"], **checked(
                        configs, 10, 16, args.t1, results, members)})
            last[path] = (size, time.perf_counter() - start)
            row["batching"], row["process_wall_s"] = path, last[path][1]
            rec["rows"].append(row)
            print(f"W2 {count:>8} {path:<12} {row['traj_per_s']:10.0f} traj/s "
                  f"{row['us_per_member_step']:8.3f} us/member-step, compile "
                  f"{row['compile_s']:.1f} s", flush=True)
            save()


def w1_naive_batch(points, n_max):
    """W1's members padded to `n_max`, built by the sweep's vectorized build (the same
    members as `w1.make_problem`'s, seeded by index), for the naive vmap."""
    problem = ConfiguredProblem(fixed=tuple(sorted(FIXED.items())))
    settings = {name: np.asarray([p[name] for p in points]) for name in ("ratio", "power")}
    settings["seed"] = np.arange(len(points), dtype=np.int32)
    (params, objectives, _, _), (static, objective_static) = build_batch(
        problem, settings, np.arange(len(points)), n_max)
    return params, eqx.combine(objectives, objective_static), static


def ladder(run_at, target, budget, rtols):
    """Runs `run_at(rtol)` -> (row, error) down `rtols` until the error is at most `target`
    or the budget is spent; returns the rows (the last one matched, if any)."""
    rows = []
    for rtol in rtols:
        if rows and (reason := budget.skip(rows[-1]["seconds"])):
            rows.append({"rtol": rtol, "reason": reason})
            break
        start = time.perf_counter()
        row, err = run_at(rtol)
        rows.append(dict(row, rtol=rtol, atol=rtol * ATOL / RTOL, max_dp=err,
                         seconds=time.perf_counter() - start, matched=err <= target))
        if err <= target:
            break
    return rows


def torch_status() -> tuple[object, str | None]:
    """(the peers module, None), or (None, why torchdiffeq cannot run on a GPU here)."""
    try:
        import torch
        import torchdiffeq  # noqa: F401
    except ImportError as error:
        return None, f"skipped: {error}"
    if not torch.cuda.is_available():
        return None, "skipped: torch sees no CUDA device"
    try:
        return importlib.import_module("peers"), None
    except ImportError as error:
        return None, f"skipped: benchmarks/peers.py needs {error}"


def section_w1(rec, save, budget, args):
    """W1 at B members: the sweep in both coordinates, the naive vmap and torchdiffeq, with
    errors against a float64 reference on the first members."""
    B = args.w1_batch
    points = w1_points(B)
    problem = ConfiguredProblem(fixed=tuple(sorted(FIXED.items())))
    n = problem.num_examples({"ratio": np.asarray([p["ratio"] for p in points])})
    n_max = int(np.max(n))
    ts = sj.save_times(args.w1_t1, SAVES)
    ts_np = np.asarray(ts, np.float64)
    rec.update(batch=B, n_max=n_max, t1=args.w1_t1, paths={}, skipped={})
    # The reference, member by member while the budget allows (a third of it at most).
    ref_budget, ref = Budget(min(budget.left() / 3, args.ref_seconds)), []
    for problem in padded_problems(points[:args.ref_members])[0]:  # one shape: one compilation
        if ref and ref_budget.left() < 0:
            break
        ref.append(reference([problem], ts_np)[0])
    ref = np.stack(ref)
    rec.update(reference_members=len(ref), **gpu_memory())
    err = lambda progress: float(np.max(np.abs(np.asarray(progress)[:len(ref)] - ref)))  # noqa: E731
    save()
    # The sweep in both coordinates, default batching; "today" (Python builds) is not run.
    specs = {"auto": "sweep, parameters", "auto:affine": "sweep, class_affine"}
    for spec, fn in sweep_paths(points, n_max, list(specs), args.w1_t1).items():
        if spec in specs:
            warm = numbers = None
            numbers, progress = timed_sweep(fn)  # cold: compiles
            for _ in range(args.repeats):
                again, progress = timed_sweep(fn)
                warm = again if warm is None or again["wall"] < warm["wall"] else warm
            warm = warm or numbers
            rec["paths"][specs[spec]] = dict(warm, cold_wall=numbers["wall"],
                                             cold_compile=numbers["compile"],
                                             traj_per_s_wall=B / warm["wall"],
                                             max_dp=err(progress), **gpu_memory())
            print(f"W1 {specs[spec]}: {B / warm['wall']:.1f} traj/s, max |dp| "
                  f"{err(progress):.1e}", flush=True)
            save()
    target = max(r["max_dp"] for r in rec["paths"].values())
    rtols = [RTOL * 10 ** (-i / 2) for i in range(args.rungs)]
    params, objective, static = w1_naive_batch(points, n_max)

    def naive_at(rtol):
        run, compile_s = naive_solve(params, objective, static, ts,
                                     lambda m, o: o.metrics(m)["class_progress"], rtol,
                                     rtol * ATOL / RTOL)
        row, saves = naive_row(run, compile_s, B)
        return row, err(saves)

    rec["paths"]["naive jax.vmap(diffeqsolve)"] = ladder(naive_at, target, budget, rtols)
    save()
    peers, reason = torch_status()
    if reason:
        rec["skipped"]["torchdiffeq"] = reason
        return
    import torch

    members = min(args.torch_members, B)
    arrays = [np.stack(a) for a in zip(*[member_arrays(*p) for p in
                                         padded_problems(points[:members])], strict=True)]
    batch = [torch.tensor(a, dtype=torch.float32, device="cuda") for a in arrays]
    t_torch = torch.tensor(ts_np, dtype=torch.float32, device="cuda")

    def torch_at(rtol):
        # peers.torchdiffeq_path reads W1's tolerances from its module: set them per rung.
        peers.RTOL, peers.ATOL = rtol, rtol * ATOL / RTOL
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        progress, evals = peers.torchdiffeq_path(batch, t_torch)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        return ({"members": members, "run_s": seconds, "traj_per_s": members / seconds,
                 "evals": evals,
                 "torch_peak_gb": torch.cuda.max_memory_allocated() / 2**30}, err(progress))

    peers.torchdiffeq_path(batch, t_torch[:2])  # first-call costs
    rec["paths"]["torchdiffeq dopri5"] = ladder(torch_at, target, budget, rtols)
    rec["torch"] = torch.__version__


def section_networks(rec, save, budget, args):
    """The digits experiments at their full settings (quick ones with `--quick-networks`)."""
    try:
        import sklearn  # noqa: F401
    except ImportError as error:
        rec["skipped"] = f"skipped: scikit-learn is needed for the digits: {error}"
        return
    from ssm_jax.experiments import digits as study

    runs = {"reweighting": (study.run_reweighting, study.QUICK_REWEIGHTING
                            if args.quick_networks else study.ReweightingConfig()),
            "importance": (study.run_importance, study.QUICK_IMPORTANCE
                           if args.quick_networks else study.ImportanceConfig())}
    rec["settings"] = "quick" if args.quick_networks else "full"
    if args.dry_run:
        rec["reason"] = "skipped in the dry run: even --quick takes minutes on a CPU"
        return
    for name, (run, config) in runs.items():
        if budget.left() <= 0:
            rec[name] = {"reason": "skipped: no budget left"}
            continue
        start = time.perf_counter()
        ds = run(config)
        rec[name] = {"wall_s": time.perf_counter() - start,
                     "compile_s": float(ds.compile_seconds.sum()),
                     "run_s": float(ds.run_seconds.sum()), **gpu_memory()}
        print(f"digits {name}: {rec[name]['wall_s']:.1f} s", flush=True)
        save()


def section_precision(rec, save, budget, args):
    """W2 at one size in float32 with matmuls at "highest" and at "default" precision."""
    size = args.precision_configs
    configs = w2_configs(size)
    members = np.random.default_rng(1).choice(size, min(args.check, size), replace=False)
    out = {}
    for precision in ("highest", "default"):
        flow = sj.Flow(args.t1, num_saves=SAVES, rtol=RTOL, atol=ATOL, max_steps=MAX_STEPS,
                       precision=precision)
        start = time.perf_counter()
        ds = sj.sweep(w2_problem(10, 16), sj.Points(**configs), dynamics=flow,
                      metrics=lean_metrics, vectorized=True, chunk_size=args.chunk,
                      order_by=lambda ratio, power, **_: cost_key(ratio, power, args.t1, 10))
        steps = ds.num_steps.values
        out[precision] = {"steps": steps, "loss": ds.loss.values,
                          "learning_time": ds.learning_time.values}
        rec[precision] = {"members": size, "wall_s": time.perf_counter() - start,
                          "compile_s": float(ds.attrs["compile_seconds"]),
                          "mean_steps": float(steps.mean()), "max_steps": int(steps.max()),
                          "vs_gradient_flow": checked(configs, 10, 16, args.t1,
                                                      out[precision], members)}
        save()
    high, low = out["highest"], out["default"]
    finite = np.isfinite(high["learning_time"]) & np.isfinite(low["learning_time"])
    rec["default_vs_highest"] = {
        "max_dloss_over_loss0": float(np.max(np.abs(low["loss"] - high["loss"])
                                             / high["loss"][:, :1])),
        "max_rel_dlearning_time": float(np.max(np.abs(
            low["learning_time"] - high["learning_time"])[finite]
            / high["learning_time"][finite], initial=0.0)),
        "mean_dsteps": float(np.mean(low["steps"] - high["steps"]))}


def section_smoke(rec, save, budget, args):
    """The smoke subset of the test suite in a pytest subprocess (float64: see the top)."""
    command = [sys.executable, "-m", "pytest", "-n", "0", "-q", "-x", "-p", "no:cacheprovider",
               *SMOKE_TESTS]
    rec["command"] = " ".join(command[1:])
    rec["float32"] = ("not run: tests/conftest.py enables float64 for every test; a float32 "
                      "subset would need the conftest to leave float64 off when asked (an "
                      "environment variable) and float32 tolerances in the chosen tests")
    if args.dry_run:
        rec["float64"] = {"reason": "skipped in the dry run (it would run the test suite "
                                    "inside its own test)"}
        return
    # This process holds its share of the GPU already: the tests allocate as they go.
    env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false",
               XLA_PYTHON_CLIENT_MEM_FRACTION="0.3")
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env,
                              timeout=max(budget.left(), 1))
        output, returncode = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as error:
        output = (error.stdout or b"").decode() if isinstance(error.stdout, bytes) else (
            error.stdout or "")
        returncode = "timeout"
    print(output[-3000:], flush=True)
    counts = {word: int(num) for num, word in
              re.findall(r"(\d+) (passed|failed|errors?|skipped|deselected)", output[-500:])}
    rec["float64"] = {"returncode": returncode, "counts": counts,
                      "wall_s": time.perf_counter() - start, "tail": output[-1500:]}


def section_environment(rec, save, budget, args):
    """Device, versions, command."""
    versions = {m.__name__: getattr(m, "__version__", "?") for m in (jax, diffrax, eqx, np)}
    rec.update(command=" ".join([sys.executable, *sys.argv]), versions=versions,
               python=platform.python_version(), machine=platform.machine(),
               devices=[f"{d.platform}: {d.device_kind}" for d in jax.devices()],
               backend=jax.default_backend(), dry_run=args.dry_run,
               mem_fraction=os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION"),
               x64=bool(jax.config.jax_enable_x64), **gpu_memory())
    print(f"accelerator.py: {rec['devices']}; " + ", ".join(f"{k} {v}" for k, v in
                                                            versions.items())
          + f"; Python {rec['python']}\n$ {rec['command']}", flush=True)


class Tee:
    """Writes to the terminal and the log."""

    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for s in self.streams:
            s.write(text)

    def flush(self):
        for s in self.streams:
            s.flush()


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for accelerator.json and .log")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes, for a CPU")
    parser.add_argument("--sections", nargs="+", default=list(BUDGETS), choices=list(BUDGETS))
    parser.add_argument("--budgets", nargs="+", type=float, default=None,
                        help="seconds per section, in the order of --sections")
    parser.add_argument("--w2-configs", type=int, nargs="+", default=[4096, 65536, 1048576])
    parser.add_argument("--lanes", type=int, default=4096, help="lanes of the Refill path")
    parser.add_argument("--chunk", type=int, default=None, help="members per chunk (W2)")
    parser.add_argument("--map-configs", type=int, default=1024,
                        help="W2 members of the Map path at the first size")
    parser.add_argument("--t1", type=float, default=6000.0, help="W2's final time")
    parser.add_argument("--check", type=int, default=4, help="members checked one by one")
    parser.add_argument("--w1-batch", type=int, default=4096)
    parser.add_argument("--w1-t1", type=float, default=4000.0)
    parser.add_argument("--ref-members", type=int, default=32)
    parser.add_argument("--ref-seconds", type=float, default=30.0)
    parser.add_argument("--torch-members", type=int, default=128)
    parser.add_argument("--precision-configs", type=int, default=65536)
    parser.add_argument("--quick-networks", action="store_true")
    parser.add_argument("--repeats", type=int, default=1,
                        help="warm reruns of the sweeps at the first size (best of)")
    parser.add_argument("--rungs", type=int, default=5,
                        help="tolerances tried for matched accuracy (half a decade apart)")
    argv = sys.argv[1:] if argv is None else argv
    if "--dry-run" in argv:  # tiny sizes, unless given
        parser.set_defaults(w2_configs=[64], lanes=16, check=1, w1_batch=8, w1_t1=400.0,
                            ref_members=1, torch_members=4, precision_configs=64, repeats=0,
                            rungs=1)
    args = parser.parse_args(argv)
    if args.dry_run and args.budgets is None:
        args.budgets = [60.0] * len(args.sections)
    budgets = args.budgets or [BUDGETS[s] for s in args.sections]
    if len(budgets) != len(args.sections):
        parser.error("--budgets takes one number per section")
    args.budget = dict(zip(args.sections, budgets, strict=True))
    return args


def main(argv=None):
    args = parse(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "accelerator.log", "w", buffering=1)  # a run cut short keeps its lines
    sys.stdout, sys.stderr = Tee(sys.__stdout__, log), Tee(sys.__stderr__, log)
    report = {"sections": {}}

    def save():
        tmp = out / "accelerator.json.tmp"
        tmp.write_text(json.dumps(report, indent=1, default=lambda x: x.tolist()
                                  if hasattr(x, "tolist") else str(x)))
        tmp.replace(out / "accelerator.json")

    try:
        carry = 0.0  # what a section leaves of its budget goes to the next
        for name in ("environment", *args.sections):
            rec = report["sections"][name] = {}
            fn = globals()[f"section_{name}"]
            start, budget = time.perf_counter(), Budget(args.budget.get(name, 0) + carry)
            try:
                fn(rec, save, budget, args)
                rec["status"] = "ok"
            except Exception as error:  # one section's failure must not lose the rest
                traceback.print_exc()
                rec.update(status="error", error=f"{type(error).__name__}: {error}",
                           traceback=traceback.format_exc()[-3000:])
            rec["section_s"] = time.perf_counter() - start
            carry = max(budget.left(), 0.0)
            save()
    finally:
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        log.close()
    return report


if __name__ == "__main__":
    main()
