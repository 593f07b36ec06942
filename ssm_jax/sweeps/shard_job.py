"""One shard of a sweep as a scheduler's job: `sweep(..., shard=(i, N), resume=True)` into the
shared store, always resuming, so that a job run again (requeued after a pre-emption or a
time limit, or submitted again after a failure) redoes exactly its chunks without a done
marker.

Signals, as SLURM sends them:

- SIGTERM (`scancel`, or a pre-emption without a checkpoint signal): the sweep stops cleanly
  (`stopping`): finished chunks stay, the store is released, and the job fails with the stop's
  message (`ShardStopped`); the scheduler may requeue it, and the rerun resumes.
- SIGUSR2 (submitit asks SLURM for it 90 s before the time limit, and sends it on a
  pre-emption): the sweep stops as on SIGTERM, the chunk still computing is let finish (it is
  not written), then submitit checkpoints the job (`ShardJob.checkpoint`: the same shard,
  resuming) and requeues it.
- SIGKILL: nothing runs; the chunks in flight have no done marker and are redone. The lock
  the killed process left is taken over by the requeued job on the same host as for any
  writer; on another host, the job knows it as its own earlier attempt's (a note of the
  holder's host and pid beside submitit's logs) and removes it with a warning.
"""

import json
import os
from pathlib import Path
import signal
import socket
import threading
import warnings

WORKER_GRACE_SECONDS = 60.0
"""How long a pre-empted shard waits for its chunk still computing (which is not written) to
end before it is requeued; submitit's signal comes 90 s before the kill."""


class ShardStopped(RuntimeError):
    """A shard's job stopped by SIGTERM or SIGINT: the message says what was kept (as
    `SweepStopped`), and the shard's next run resumes it."""


class ShardJob:
    """Shard `shard` of a sweep into `store`, run by a scheduler's job; checkpointable by
    submitit (its `checkpoint` resubmits the same shard, which resumes).

    **Arguments:**

    - `make_problem`, `design`: as for `sweep`.
    - `store`: the shared store folder.
    - `shard`: (i, N).
    - `options`: the other keywords of `sweep` (`chunk_size` included, so that every shard
      keeps one plan).
    - `cpu_devices`: on a CPU host, JAX CPU devices to make (`use_cpu_cores`), or None to
      leave JAX's default.
    """

    def __init__(self, make_problem, design, store, shard: tuple[int, int], options: dict,
                 cpu_devices: int | None = None):
        self.make_problem, self.design = make_problem, design
        self.store, self.shard = str(store), tuple(shard)
        self.options, self.cpu_devices = dict(options), cpu_devices

    def __call__(self) -> int:
        """Runs the shard, resuming.

        **Returns:** the number of the shard's chunks done in the store. Raises `ShardStopped`
        on SIGTERM or SIGINT.
        """
        from .compilation_cache import enable_compilation_cache
        from .cpu_cores import use_cpu_cores
        from .run import sweep
        from .stopping import SweepStopped
        from .store import read_manifest, stored_chunks

        if self.cpu_devices is not None:
            use_cpu_cores(self.cpu_devices)
        enable_compilation_cache()
        _release_earlier_attempt(Path(self.store), self.shard)
        with _Preemption() as preemption:
            try:
                sweep(self.make_problem, self.design, store=self.store, shard=self.shard,
                      resume=True, **self.options)
            except SweepStopped as stopped:
                if preemption.signalled:
                    preemption.requeue()  # exits
                raise ShardStopped(str(stopped)) from None
        total = -(-len(read_manifest(self.store)["order"]) // self.options["chunk_size"])
        return sum(1 for c in stored_chunks(self.store) if c % self.shard[1] == self.shard[0]
                   and c < total)

    def checkpoint(self):
        """What submitit requeues after a pre-emption or a time limit: this shard, which
        resumes.

        **Returns:** a `submitit.helpers.DelayedSubmission` of this job.
        """
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self)


class _Preemption:
    """While entered in the main thread of a submitit job, its pre-emption signal (SIGUSR2)
    stops the sweep as SIGTERM does; `requeue` then hands over to submitit's handler, which
    checkpoints and requeues the job."""

    def __init__(self):
        self.signalled = False
        self._signal = None

    def __enter__(self) -> "_Preemption":
        try:
            from submitit import JobEnvironment

            self._signal = JobEnvironment._usr_sig()
            environment = JobEnvironment()
        except Exception:  # not in a submitit job, or no such signal: nothing to do
            return self
        if (threading.current_thread() is not threading.main_thread()
                or not callable(signal.getsignal(self._signal)) or environment is None):
            self._signal = None
            return self
        self._submitit = signal.getsignal(self._signal)
        self._before = signal.getsignal(signal.SIGTERM)
        signal.signal(self._signal, self._handle)
        return self

    def _handle(self, signum, frame):
        self.signalled = True
        handler = signal.getsignal(signal.SIGTERM)
        if handler is not self._before and callable(handler):  # the sweep's: stop cleanly
            handler(signal.SIGTERM, frame)
        else:  # before or after the chunks: nothing is in flight
            self._submitit(signum, frame)

    def requeue(self) -> None:
        """Waits for the abandoned chunk, then lets submitit checkpoint and requeue the job
        (it exits)."""
        for thread in threading.enumerate():
            if thread.name.startswith("ssm_jax sweep worker"):
                thread.join(WORKER_GRACE_SECONDS)
        self._submitit(self._signal, None)

    def __exit__(self, *exc) -> None:
        if self._signal is not None:
            signal.signal(self._signal, self._submitit)


def _release_earlier_attempt(store: Path, shard: tuple[int, int]) -> None:
    """Removes the shard's lock where an earlier attempt of this very job left it (killed on
    another host, then requeued: the scheduler starts a requeued job once the earlier one is
    gone), known by a note of the holder kept beside submitit's logs; then notes this one."""
    try:
        from submitit import JobEnvironment

        environment = JobEnvironment()
        note = Path(environment.paths.folder) / f"{environment.job_id}_shard_holder.json"
    except Exception:  # not in a submitit job
        return
    import jax

    # The lock of this process among the shard's processes (`SweepStore`).
    writer = (shard[0] * jax.process_count() + jax.process_index(),
              shard[1] * jax.process_count())
    lock = store / "locks" / f"shard-{writer[0]}-of-{writer[1]}.lock"
    mine = {"host": socket.gethostname(), "pid": os.getpid()}
    try:
        earlier = json.loads(note.read_text())
        holder = json.loads(lock.read_text())
    except (OSError, ValueError):
        earlier = holder = None
    if (earlier is not None and holder is not None and earlier != mine
            and {k: holder.get(k) for k in mine} == earlier):
        lock.unlink(missing_ok=True)
        warnings.warn(f"`store` = '{store}': removed the lock {lock.name} of process "
                      f"{earlier['pid']} on {earlier['host']}, an earlier attempt of job "
                      f"{environment.job_id}, which is gone.", stacklevel=2)
    note.parent.mkdir(parents=True, exist_ok=True)
    note.write_text(json.dumps(mine))
