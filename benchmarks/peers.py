"""Trajectories per second on workload W1 (see w1.py): ssm_jax's sweep against the tools a
research script would use instead, all in the same run, each path warmed up first (compile or
first-call cost excluded), with each path's error against a tight float64 reference.

    python benchmarks/peers.py --batch 1 16 64 [--t1 4000] [--device cpu|cuda] [--json PATH]

Paths (every one records the per-class progress at the same 100 save times):
- ssm_jax sweep: `ssm_jax.sweep` with `Flow(t1, num_saves=100, rtol=1e-4, atol=1e-6)`,
                 default batching
- naive vmap:    `jax.vmap(diffrax.diffeqsolve)` written the obvious way (w1.py)
- torchdiffeq:   `odeint(method="dopri5")`, the whole padded batch as one tensor state, one call;
                 the vector field is the hand-written analytic gradient (checked against autograd)
- scipy RK45:    `solve_ivp` in a Python loop over members (unpadded), numpy analytic gradient
- torch GD:      plain gradient descent, `loss.backward()` and `p -= eta * p.grad`, batched;
                 eta = t1 / (99 * --gd-steps-per-save), compared with the flow at t = step * eta
- reference:     `gradient_flow` in float64 with Dopri8, rtol 1e-10, atol 1e-12, from the same
                 float32 start (agrees with Dopri8 at rtol 1e-12 and Tsit5 at 1e-10 to 3e-10)

torch and numpy's BLAS run on `--threads` threads (default 1): the matmuls are tiny, and on a
shared 2-core machine two threads only contend (numpy's gradient took 40 ms instead of 0.5 ms).
`max |dp|` is the largest difference in class progress from the reference over members, saves
and classes. GD runs as many steps as fit in `--gd-budget` seconds; if that is fewer than all,
its time is extrapolated (constant cost per step) and its error is over the saves it reached.

The objective, from `Objective`, `losses.square` and `UFM`: with M = W H (k x n, outputs^T),
one-hot targets Y (k x n; zero columns for padding) and per-example weights q_i = omega_{y_i}
(zero for padding), L = sum_i (q_i / n) (1/2) |M_i - Y_i|^2, n the unpadded count. With
R = (M - Y) diag(q / n): dL/dW = R H^T, dL/dH = W^T R.
"""

import argparse
import json
import platform
import time

import diffrax
import equinox as eqx
import jax
import numpy as np
import scipy
from threadpoolctl import threadpool_limits
import torch
import torchdiffeq
from w1 import (
    ATOL,
    RTOL,
    SAVES,
    gradient,
    make_problem,
    member_arrays,
    naive_vmap,
    padded_problems,
    progress,
    reference,
    scipy_path,
    timed,
    to_float64,
    w1_points,
)

import ssm_jax as sj

# ---- the problem as plain arrays, for torch (numpy's and the gradient: w1.py) ----

def torch_loss(W, H, Y, qn):
    """L summed over the batch (members are independent, so its gradient is theirs)."""
    return (0.5 * qn * ((W @ H - Y) ** 2).sum(-2)).sum()


def check_gradient(point):
    """At t = 0 the numpy, torch analytic and torch autograd gradients equal jax.grad of the
    ssm_jax objective (float64 throughout, from the same start)."""
    model, objective = make_problem(**point)
    with jax.enable_x64(True):
        model, objective = to_float64((model, objective))
        params, static = eqx.partition(model, eqx.is_inexact_array)
        value, g = jax.value_and_grad(lambda p: objective(eqx.combine(p, static)))(params)
        expected = [np.asarray(g.W), np.asarray(g.H)]
    arrays = member_arrays(model, objective)
    W, H, Y, qn = (torch.tensor(a, requires_grad=i < 2) for i, a in enumerate(arrays))
    loss = torch_loss(W, H, Y, qn)
    loss.backward()
    candidates = {"numpy": gradient(*arrays),
                  "torch": [g.detach().numpy() for g in gradient(W, H, Y, qn)],
                  "torch autograd": [W.grad.numpy(), H.grad.numpy()]}
    scale = max(np.abs(e).max() for e in expected)
    errors = {name: max(np.abs(a - e).max() for a, e in zip(got, expected, strict=True)) / scale
              for name, got in candidates.items()}
    assert max(errors.values()) < 1e-6, f"gradients differ from jax.grad (relative): {errors}"
    assert abs(loss.item() - float(value)) < 1e-12 * float(value)
    return max(errors.values())


# ---- the paths; each returns (class progress (B, T, k), vector-field evals per member) ----

def torchdiffeq_path(batch, ts):
    W0, H0, Y, qn = batch
    (B, k, d), n = W0.shape, H0.shape[-1]
    nfe = [0]

    def field(t, y):
        nfe[0] += 1
        gW, gH = gradient(y[:, :k * d].reshape(B, k, d), y[:, k * d:].reshape(B, d, n), Y, qn)
        return -torch.cat([gW.flatten(1), gH.flatten(1)], 1)

    # One tensor state for the whole batch: torchdiffeq's default error norm is then one RMS
    # over every member and padding column, and all members take the same steps.
    y0 = torch.cat([W0.flatten(1), H0.flatten(1)], 1)
    ys = torchdiffeq.odeint(field, y0, ts, method="dopri5", rtol=RTOL, atol=ATOL)
    T = ts.shape[0]
    p = progress(ys[..., :k * d].reshape(T, B, k, d), ys[..., k * d:].reshape(T, B, d, n), Y)
    return p.transpose(0, 1).cpu().numpy(), nfe[0]


def gd_path(batch, eta, per_save, intervals, device):
    """Plain batched gradient descent, as a research script writes it: `intervals` times
    `per_save` steps of size `eta`, recording class progress every `per_save` steps."""
    W0, H0, Y, qn = batch
    W, H = W0.clone().requires_grad_(), H0.clone().requires_grad_()
    records = [progress(W0, H0, Y)]
    for step in range(1, intervals * per_save + 1):
        loss = torch_loss(W, H, Y, qn)
        loss.backward()
        with torch.no_grad():
            W -= eta * W.grad
            H -= eta * H.grad
        W.grad = H.grad = None
        if step % per_save == 0:
            records.append(progress(W.detach(), H.detach(), Y))
    if device == "cuda":
        torch.cuda.synchronize()
    return torch.stack(records, 1).cpu().numpy(), intervals * per_save


def run_batch(size, args):
    points = w1_points(size)
    problems, n_max = padded_problems(points)
    ts = sj.save_times(args.t1, SAVES)
    ts_np = np.asarray(ts, np.float64)
    start = time.perf_counter()
    ref = reference(problems, ts_np)
    ref_seconds = time.perf_counter() - start

    # torch in float32, like the JAX paths; padding columns carry zero weight and zero targets.
    batch = [torch.tensor(np.stack(a), dtype=torch.float32, device=args.device)
             for a in zip(*[member_arrays(*p) for p in problems], strict=True)]
    t_torch = torch.tensor(ts_np, dtype=torch.float32, device=args.device)
    sync = torch.cuda.synchronize if args.device == "cuda" else lambda: None
    # scipy runs each member on its own unpadded problem: a loop needs no padding.
    unpadded = [member_arrays(*make_problem(**p)) for p in points]
    grid = sj.Grid(member=np.arange(size))
    flow = sj.Flow(args.t1, num_saves=SAVES, rtol=RTOL, atol=ATOL)
    run_naive = naive_vmap(problems, ts)  # compiled ahead: a warm-up run would be long
    per_save = args.gd_steps_per_save

    def sweep():
        ds = sj.sweep(lambda member: make_problem(**points[member]), grid, dynamics=flow,
                      pad_to=n_max)
        return (ds.class_progress.transpose("member", "time", "cls").values,
                float(ds.num_vector_field_evals.mean()))

    def naive():
        progress, steps = run_naive()
        return progress, float(np.mean(sj.dynamics.flow.vector_field_evals(diffrax.Tsit5(), steps)))

    def torchdiffeq_synced(ts):
        out = torchdiffeq_path(batch, ts)
        sync()
        return out

    # Warm-ups of the torch and scipy paths run a short piece: nothing compiles there.
    results = {
        "ssm_jax sweep": timed(sweep),
        "naive vmap": timed(naive, warmup=False),
        "torchdiffeq": timed(lambda: torchdiffeq_synced(t_torch),
                             warmup=lambda: torchdiffeq_synced(t_torch[:2])),
        "scipy RK45": timed(lambda: scipy_path(unpadded, ts_np),
                            warmup=lambda: scipy_path(unpadded[:1], ts_np[:2])),
    }
    # GD: one save interval as warm-up gives its cost, then as many intervals as the budget
    # allows; its time is scaled to the whole run (every step costs the same).
    eta, total = args.t1 / ((SAVES - 1) * per_save), (SAVES - 1) * per_save
    start = time.perf_counter()
    gd_path(batch, eta, per_save, 1, args.device)
    intervals = int(np.clip(args.gd_budget // (time.perf_counter() - start), 1, SAVES - 1))
    seconds, out = timed(lambda: gd_path(batch, eta, per_save, intervals, args.device),
                         warmup=False)
    results["torch GD"] = (seconds * (SAVES - 1) / intervals, out)

    base = results["ssm_jax sweep"][0]
    rows = {name: dict(seconds=s, traj_per_s=size / s, x_sweep=base / s, evals_per_member=e,
                       max_dp=float(np.max(np.abs(p - ref[:, :p.shape[1]]))))
            for name, (s, (p, e)) in results.items()}
    rows["torch GD"]["evals_per_member"] = total
    note = "" if intervals == SAVES - 1 else (
        f", timed over {intervals * per_save} steps (t <= {intervals * per_save * eta:.0f})"
        " and extrapolated")
    print(f"\nW1, B = {size} (padded to n = {n_max}), t1 = {args.t1}; reference {ref_seconds:.1f}"
          f" s; torch GD: eta = {eta:.4g}, {total} steps{note}")
    print(f"{'path':<14} {'s':>8} {'traj/s':>9} {'x sweep':>8} {'evals/member':>13} "
          f"{'max |dp|':>9}")
    for name, r in rows.items():
        print(f"{name:<14} {r['seconds']:8.2f} {r['traj_per_s']:9.3g} {r['x_sweep']:8.3g} "
              f"{r['evals_per_member']:13.0f} {r['max_dp']:9.1e}")
    return dict(batch=size, n_max=n_max, reference_seconds=ref_seconds, gd_eta=eta,
                gd_steps=total, gd_steps_timed=intervals * per_save, paths=rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[64])
    parser.add_argument("--t1", type=float, default=4000.0)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="for torch")
    parser.add_argument("--gd-steps-per-save", type=int, default=240,
                        help="GD steps between saves; eta = t1 / (99 * this)")
    parser.add_argument("--gd-budget", type=float, default=120.0,
                        help="seconds of GD to time at most (the rest is extrapolated)")
    parser.add_argument("--threads", type=int, default=1, help="torch and numpy BLAS threads")
    parser.add_argument("--json", help="write every number to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads, user_api="blas")
    versions = {m.__name__: m.__version__ for m in (jax, diffrax, eqx, torch, torchdiffeq, scipy,
                                                     np)}
    machine = (f"{jax.devices()[0].device_kind}, {platform.processor() or platform.machine()}, "
               f"torch on {args.device} ({torch.get_num_threads()} threads)")
    error = check_gradient(w1_points(1)[0])
    print(f"W1 peers; {machine}; " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"gradient check at t = 0 (numpy, torch, torch autograd vs jax.grad): {error:.1e}")
    out = dict(t1=args.t1, machine=machine, versions=versions, gradient_check=error,
               batches=[run_batch(size, args) for size in args.batch])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
