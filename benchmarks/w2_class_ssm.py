"""Throughput on workload W2, the class-level SSM, at 1e5..1e6 configurations, and where the
time goes.

W2: `imbalance_problem(model="ssm_class")`: the k x k target `class_label_matrix(counts,
weights)` of a step imbalance (n_min = 10, rho = 0.5), fit by W (k x d) H (d x k) from a
Gaussian start; Tsit5, rtol 1e-4, atol 1e-6 (max-norm PID), 100 saves on [0, t1], the default
metrics. Configurations: R ~ logU[1, 100], gamma ~ U[0, 1.5], init scale ~ logU[1e-4, 1e-2],
seed = member index.

The state's shape does not depend on R (no padding), so members are built *vectorized*: one
jitted `vmap` of `imbalance_problem` over config arrays (`sweeps.vectorized.build_batch`, what
`ssm_jax.sweep(..., vectorized=True)` does). Each chunk then runs `Flow.run`, the body the
sweep batches, under `jax.vmap` or `jax.lax.map`, compiled once per batching.

    python benchmarks/w2_class_ssm.py --k 10 --configs 100000 --batching map
    python benchmarks/w2_class_ssm.py --k 100 --configs 2000 --chunk 500 --batching map vmap
    python benchmarks/w2_class_ssm.py --k 10 --configs 4096 --analysis   # where the time goes
"""

import argparse
import json
import platform
import time

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import ssm_jax as sj
from ssm_jax._timing import timed_call
from ssm_jax.data.imbalance import step_counts
from ssm_jax.dynamics import Flow, objective_metrics
from ssm_jax.dynamics.erk import Unrolled
from ssm_jax.sweeps.config import ConfiguredProblem
from ssm_jax.sweeps.problems import imbalance_problem
from ssm_jax.sweeps.vectorized import build_batch

RTOL, ATOL, SAVES, MAX_STEPS = 1e-4, 1e-6, 100, 100_000
MINORITY, RHO = 10, 0.5
TSIT5_EVALS = 6  # vector-field evaluations per Tsit5 step (7 stages, first same as last)


def w2_configs(num: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"ratio": np.exp(rng.uniform(0, np.log(100), num)).astype(np.float32),
            "power": rng.uniform(0, 1.5, num).astype(np.float32),
            "init_scale": np.exp(rng.uniform(np.log(1e-4), np.log(1e-2), num)).astype(np.float32),
            "seed": np.arange(num, dtype=np.int32)}


def w2_problem(k: int, dim: int) -> ConfiguredProblem:
    """W2's `make_problem`: `imbalance_problem(model="ssm_class")` with the fixed settings,
    traceable in ratio, power, init scale and seed (so members are built vectorized)."""
    return ConfiguredProblem(fixed=tuple(sorted(dict(
        model="ssm_class", num_classes=k, minority_size=MINORITY, majority_fraction=RHO,
        dim=dim).items())))


def cost_key(ratio, power, t1, k: int):
    """Predicted steps up to a constant: t1 times the fastest class-level rate
    sqrt(omega_c n_c) / n, the stiffest direction near the fit (cf. `predicted_steps`)."""
    counts = step_counts(k, ratio, MINORITY, RHO, xp=np)
    weights = counts ** -np.asarray(power)[..., None]
    weights = weights * counts.sum(-1, keepdims=True) / np.sum(counts * weights, -1,
                                                                keepdims=True)
    return t1 * np.max(np.sqrt(weights * counts), -1) / counts.sum(-1)


def make_builder(k: int, dim: int):
    """Config arrays (B,) -> (batched params, batched objective): the sweep's own vectorized
    build (`sweeps.vectorized.build_batch`, one jitted vmap of `imbalance_problem`)."""
    problem = w2_problem(k, dim)
    _, (static, objective_static) = build_batch(
        problem, {n: np.ones(1, np.float32) for n in ("ratio", "power", "init_scale")}
        | {"seed": np.zeros(1, np.int32)}, np.zeros(1, int), None)

    def builder(ratio, power, init_scale, seed):
        (params, objectives, _, _), _ = build_batch(
            problem, dict(ratio=ratio, power=power, init_scale=init_scale, seed=seed),
            np.arange(len(ratio)), None)
        return params, eqx.combine(objectives, objective_static)

    return builder, static


def summarize(ts, recorded):
    """What a chunk keeps per member (the full record, (5 k + 1) x 100 floats, would need
    2 GB for 1e5 members at k = 10): per-class half-learning times and the loss curve."""
    return {"learning_time": sj.learning_time(ts, recorded["class_progress"]),
            "loss": recorded["loss"]}


def make_runner(static, t1: float, batching: str, metrics=objective_metrics, unroll=True):
    """A chunk of members -> (summaries, num_steps, status): `Flow.run` under vmap or
    lax.map, jitted (one compilation per chunk shape); `unroll=False` steps with diffrax's
    own Runge-Kutta step, as before the stages were unrolled."""
    solver = Unrolled(diffrax.Tsit5()) if unroll else diffrax.Tsit5()
    flow = Flow(t1, num_saves=SAVES, rtol=RTOL, atol=ATOL, max_steps=MAX_STEPS, solver=solver)
    ts = flow.record_times()

    def member(args):
        params, objective = args
        recorded, _, stats = flow.run(params, static, objective, None, metrics)
        return summarize(ts, recorded), stats["num_steps"], stats["status"]

    batched = jax.vmap(member) if batching == "vmap" else lambda b: jax.lax.map(member, b)
    return eqx.filter_jit(lambda params, objective: batched((params, objective)))


def chunked(order: np.ndarray, chunk: int):
    """Chunks of `order`; the last is filled up with copies of its last member (one shape)."""
    for start in range(0, order.size, chunk):
        idx = order[start:start + chunk]
        yield idx, np.concatenate([idx, np.repeat(idx[-1:], chunk - idx.size)])


def run_all(configs, k, dim, t1, chunk, batching, order, builder, static, unroll=True):
    """Runs every member in `order`, chunk by chunk. Returns totals and per-member results."""
    runner = make_runner(static, t1, batching, unroll=unroll)
    n = order.size
    steps, status = np.zeros(n, np.int64), np.zeros(n, np.int64)
    times, loss = np.zeros((n, k), np.float32), np.zeros((n, SAVES), np.float32)
    build_s = compile_s = run_s = 0.0
    wastes, cpu_start = [], time.process_time()
    for idx, filled in chunked(order, chunk):
        batch, c0, b0 = timed_call(builder, *(configs[name][filled] for name in
                                              ("ratio", "power", "init_scale", "seed")))
        build_s += b0
        compile_s += c0
        (summary, s, st), c1, r1 = timed_call(runner, *batch)
        compile_s += c1
        run_s += r1
        m = idx.size
        steps[idx], status[idx] = np.asarray(s)[:m], np.asarray(st)[:m]
        times[idx], loss[idx] = (np.asarray(summary["learning_time"])[:m],
                                 np.asarray(summary["loss"])[:m])
        wastes.append(1 - steps[idx].mean() / steps[idx].max())
    return {"members": n, "chunk": chunk, "batching": batching,
            "build_s": build_s, "compile_s": compile_s, "run_s": run_s,
            # all threads' CPU seconds (build + compile + run): a check on a shared machine
            "process_cpu_s": time.process_time() - cpu_start,
            "traj_per_s": n / run_s, "mean_steps": float(steps.mean()),
            "max_steps": int(steps.max()), "min_steps": int(steps.min()),
            "waste_mean": float(np.mean(wastes)) if batching == "vmap" else 0.0,
            "waste_max": float(np.max(wastes)) if batching == "vmap" else 0.0,
            "us_per_member_step": 1e6 * run_s / steps.sum(),
            "status_ok": int((status == 0).sum())}, {"steps": steps, "status": status,
                                                      "learning_time": times, "loss": loss}


def check_accuracy(configs, k, dim, t1, results, members):
    """Members of the batched run against `gradient_flow` one by one (same tolerances)."""
    worst = {"loss": 0.0, "learning_time": 0.0, "steps": 0}
    for i in members:
        model, objective = imbalance_problem(
            model="ssm_class", num_classes=k, ratio=float(configs["ratio"][i]),
            minority_size=MINORITY, majority_fraction=RHO, power=float(configs["power"][i]),
            dim=dim, init_scale=float(configs["init_scale"][i]), seed=int(configs["seed"][i]))
        traj = sj.gradient_flow(model, objective, t1, num_saves=SAVES, rtol=RTOL, atol=ATOL)
        loss = np.asarray(traj.metrics["loss"])
        lt = np.asarray(traj.learning_times())
        # The loss falls to float32 round-off (~1e-12 of its start), so compare on its scale.
        worst["loss"] = max(worst["loss"], float(np.max(np.abs(results["loss"][i] - loss))
                                                 / loss[0]))
        both = np.isfinite(lt) & np.isfinite(results["learning_time"][i])
        assert np.array_equal(np.isfinite(lt), np.isfinite(results["learning_time"][i]))
        if both.any():
            worst["learning_time"] = max(worst["learning_time"], float(np.max(
                np.abs(results["learning_time"][i][both] - lt[both]) / lt[both])))
        worst["steps"] = max(worst["steps"], abs(int(traj.stats["num_steps"])
                                                 - int(results["steps"][i])))
    return worst


def lean_metrics(model, objective):
    """Only what `summarize` keeps: the loss and class progress (diag Z / diag T, equal to
    `objective.metrics`' class_progress for the class-level target, one column per class)."""
    Z = model().T
    return {"loss": objective(model), "class_progress": jnp.diag(Z) / jnp.diag(objective.target)}


def replicated_cost(configs, k, dim, t1, builder, static, member, sizes, batching,
                    metrics=objective_metrics, label=None):
    """Run seconds for B copies of one member (identical steps, so no lockstep waste): the
    fixed cost per call and the cost per member-step as B grows."""
    runner = make_runner(static, t1, batching, metrics)
    rows = []
    for b in sizes:
        batch = builder(*(np.repeat(configs[n][member:member + 1], b) for n in
                          ("ratio", "power", "init_scale", "seed")))
        (_, s, _), compile_s, _ = timed_call(runner, *batch)  # compile, then time warm calls
        # Best of 3 timings (the machine may be shared), each of >= 64 members' work.
        repeats, timings = max(1, int(64 // b)), []
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(repeats):
                jax.block_until_ready(runner(*batch))
            timings.append((time.perf_counter() - start) / repeats)
        seconds = min(timings)
        steps = int(np.asarray(s)[0])
        rows.append({"batching": label or batching, "B": b, "steps": steps, "seconds": seconds,
                     "compile_s": compile_s, "us_per_member_step": 1e6 * seconds / (b * steps)})
    return rows


def bytes_and_flops_per_step(k, dim):
    """Estimates (inferred, not measured) for one Tsit5 step of one member, float32:
    state = W and H; each of 6 stage evaluations forms Z = W H, R = Z - T and the two grads
    (3 matmuls of 2 k d k flops); each stage combination reads the state plus the earlier
    stage increments, the error estimate reads all 7: ~sum(1..7) + 7 ~ 35 state-sized
    reads and writes, plus ~4 k x k arrays per evaluation."""
    state = 2 * k * dim * 4
    return 35 * state + TSIT5_EVALS * 4 * k * k * 4, TSIT5_EVALS * 3 * 2 * k * k * dim


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, nargs="+", default=[10])
    parser.add_argument("--configs", type=int, nargs="+", default=[100_000],
                        help="members, one number for all k or one per k")
    parser.add_argument("--chunk", type=int, default=4096)
    parser.add_argument("--batching", nargs="+", default=["map", "vmap"],
                        choices=["map", "vmap"])
    parser.add_argument("--order", choices=["key", "none"], default="key",
                        help="order members by the predicted cost key before chunking")
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--t1", type=float, default=6000.0)
    parser.add_argument("--check", type=int, default=4, help="members checked one by one")
    parser.add_argument("--analysis", action="store_true", help="where does the time go")
    parser.add_argument("--json", type=str, default=None)
    args = parser.parse_args()
    counts = args.configs * len(args.k) if len(args.configs) == 1 else args.configs
    print(f"W2 class-level SSM, d = {args.dim}, t1 = {args.t1}, {jax.devices()[0].device_kind}, "
          f"{platform.processor() or platform.machine()}, jax {jax.__version__}, diffrax "
          f"{diffrax.__version__}, equinox {eqx.__version__}")
    report = {"args": vars(args), "runs": [], "checks": [], "analysis": []}
    for k, num in zip(args.k, counts, strict=True):
        configs = w2_configs(num)
        builder, static = make_builder(k, args.dim)
        key = cost_key(configs["ratio"], configs["power"], args.t1, k)
        order = np.argsort(key, kind="stable") if args.order == "key" else np.arange(num)
        chunk = min(args.chunk, num)
        print(f"\nk = {k}: {num} members, chunks of {chunk}, order = {args.order}")
        print(f"{'batching':<8} {'build s':>8} {'compile s':>9} {'run s':>8} {'traj/s':>8} "
              f"{'steps mean/max':>15} {'us/mem-step':>11} {'waste mean/max':>15} {'ok':>7} "
              f"{'cpu s':>8}")
        per_member = None
        for batching in args.batching:
            row, per_member = run_all(configs, k, args.dim, args.t1, chunk, batching, order,
                                      builder, static)
            row["k"] = k
            report["runs"].append(row)
            print(f"{batching:<8} {row['build_s']:8.2f} {row['compile_s']:9.2f} "
                  f"{row['run_s']:8.2f} {row['traj_per_s']:8.1f} "
                  f"{row['mean_steps']:7.1f}/{row['max_steps']:<7d} "
                  f"{row['us_per_member_step']:11.2f} "
                  f"{row['waste_mean']:7.2f}/{row['waste_max']:<7.2f} {row['status_ok']:7d} "
                  f"{row['process_cpu_s']:8.1f}")
            rng = np.random.default_rng(1)
            members = rng.choice(num, size=min(args.check, num), replace=False)
            worst = check_accuracy(configs, k, args.dim, args.t1, per_member, members)
            report["checks"].append({"k": k, "batching": batching, **worst})
            print(f"         vs gradient_flow on {len(members)} members: max |dloss|/loss(0) "
                  f"{worst['loss']:.1e}, max rel |dt_learn| {worst['learning_time']:.1e}, "
                  f"max |dsteps| {worst['steps']}")
        if args.analysis and per_member is not None:
            report["analysis"].append(analysis(configs, k, args, builder, static, key,
                                               per_member["steps"], chunk))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=float)


def analysis(configs, k, args, builder, static, key, steps, chunk):
    """(a) fixed cost per call, (b) cost per member-step vs batch, (c) lockstep waste and
    ordering, (d) memory traffic per step, (e) the metrics' share."""
    out = {"k": k}
    median = int(np.argsort(steps)[steps.size // 2])
    sizes = [1, 8, 64, 512] if k <= 30 else [1, 8, 64]
    rows = []
    for batching in ("map", "vmap"):
        rows += replicated_cost(configs, k, args.dim, args.t1, builder, static, median, sizes,
                                batching)
    # (e) the share of the default metrics, recorded at every save
    rows += replicated_cost(configs, k, args.dim, args.t1, builder, static, median, sizes[:3],
                            "map", lean_metrics, "map lean")
    out["replicated"] = rows
    print(f"\n(a, b) B copies of member {median} (measured, warm calls, compile excluded)")
    print(f"{'batching':<9} {'B':>5} {'steps':>6} {'call s':>9} {'us/mem-step':>11}")
    for r in rows:
        print(f"{r['batching']:<9} {r['B']:5d} {r['steps']:6d} {r['seconds']:9.4f} "
              f"{r['us_per_member_step']:11.2f}")

    # (c) waste of vmapped chunks, inferred from the measured per-member step counts (a
    # vmapped member takes the same steps as alone; the chunk runs max(steps) iterations).
    def waste(order):
        w = [1 - steps[i].mean() / steps[i].max() for i, _ in chunked(order, chunk)]
        return float(np.mean(w))

    rng = np.random.default_rng(0)
    out["waste_random"] = waste(rng.permutation(steps.size))
    out["waste_by_key"] = waste(np.argsort(key, kind="stable"))
    out["waste_by_true_steps"] = waste(np.argsort(steps, kind="stable"))
    rank = lambda x: np.argsort(np.argsort(x))  # noqa: E731
    out["spearman_key_steps"] = float(np.corrcoef(rank(key), rank(steps))[0, 1])
    print(f"\n(c) vmap lockstep waste at chunk {chunk} (inferred from measured steps): random "
          f"order {out['waste_random']:.2f}, ordered by key {out['waste_by_key']:.2f}, by "
          f"true steps {out['waste_by_true_steps']:.2f}; Spearman(key, steps) = "
          f"{out['spearman_key_steps']:.2f}")

    nbytes, flops = bytes_and_flops_per_step(k, args.dim)
    best = min(r["us_per_member_step"] for r in rows)
    out.update(bytes_per_step=nbytes, flops_per_step=flops, best_us_per_member_step=best,
               achieved_GBps=nbytes / best / 1e3, achieved_GFLOPs=flops / best / 1e3)
    print(f"(d) per member-step (estimated): {nbytes / 1e3:.1f} kB of state traffic, "
          f"{flops / 1e3:.1f} kflop; at the best measured {best:.2f} us that is "
          f"{out['achieved_GBps']:.2f} GB/s and {out['achieved_GFLOPs']:.2f} GFLOP/s")
    return out


if __name__ == "__main__":
    main()
