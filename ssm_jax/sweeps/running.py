"""A process's share of a sweep, run: its chunks on its devices, each written to the store as
it ends, the members done counted, and a stop by SIGINT or SIGTERM kept clean."""

import threading

import numpy as np
import xarray as xr

from .dataset import chunk_dataset
from .design_checks import CheckedDesign
from .execute import ChunkRunner, run_on_devices
from .plan import Plan
from .progress import MembersDone
from .stopping import StopSignals, SweepStopped, _Signalled, abandon_workers

WRITE_GRACE_SECONDS = 30.0
"""How long a stop waits for a chunk being written to the store (writes take a second or so),
so that no chunk is left half written."""


class ChunkLoop:
    """Runs the chunks of `plan` still to do, as `sweep` needs them.

    **Arguments:**

    - `plan`: this process's `Plan`, with the chunks already stored skipped.
    - `runner`: the `ChunkRunner`.
    - `checked`: the checked design (class groups, predictions).
    - `counter`: `MembersDone`, told as members end.
    - `store`: a `SweepStore` to write each chunk to as it ends, or None to keep them.
    - `resume_hint`: how to resume, in words, for the message of a stopped sweep.
    """

    def __init__(self, plan: Plan, runner: ChunkRunner, checked: CheckedDesign,
                 counter: MembersDone, store, resume_hint: str):
        self.plan = plan
        self.runner = runner
        self.checked = checked
        self.counter = counter
        self.store = store
        self.resume_hint = resume_hint
        self.results: dict[int, xr.Dataset] = {}
        self.stop = threading.Event()
        self._writing = threading.Lock()

    def __call__(self, devices) -> dict[int, xr.Dataset]:
        """Runs the chunks on `devices`.

        **Arguments:**

        - `devices`: the local devices.

        **Returns:** {chunk: dataset} without a store; {} with one (the store holds them).
        Raises `SweepStopped` on SIGINT or SIGTERM (in the main thread), within about a
        second, once no chunk is being written.
        """
        with StopSignals() as signals:
            self.stop = signals.event
            try:
                self.counter.start()
                run_on_devices(devices, self.plan.queue, self._run, self.stop)
            except _Signalled as signalled:
                raise self._stopped(signalled.signum) from None
        return self.results

    def _run(self, chunk: int, device) -> None:
        members = self.plan.chunks[chunk]
        report = None
        if self.counter.progress is not None:
            def report(done):
                if not self.stop.is_set():
                    self.counter.inside(chunk, min(done, len(members)))
        out = self.runner(self.plan.filled(chunk), device, self.plan.padded_size(chunk), report)
        steps = np.asarray(out.stats["num_steps"])[:len(members)]
        ds = chunk_dataset(out.recorded, out.stats, members,
                           record_times=self.runner.dynamics.record_times(),
                           class_groups=self.checked.groups,
                           predictions=self.checked.predictions,
                           waste=self.runner.batching.waste(steps, out), index=chunk,
                           compile_seconds=out.compile_seconds, run_seconds=out.run_seconds,
                           device=str(device))
        with self._writing:
            if self.stop.is_set():  # stopped while this chunk computed: it is redone
                return
            if self.store is not None:
                self.store.write(chunk, ds)
            else:
                self.results[chunk] = ds
            self.counter.finished(chunk, len(members))

    def _stopped(self, signum: int) -> SweepStopped:
        """The stop's exception, once no chunk is being written (the lock is then kept, so
        that none starts)."""
        self._writing.acquire(timeout=WRITE_GRACE_SECONDS)
        stopped = SweepStopped(signum, self.counter.done, self.counter.total,
                               None if self.store is None else self.store.path,
                               self.resume_hint)
        if any(thread.is_alive() for thread in threading.enumerate()
               if thread.name.startswith("ssm_jax sweep worker")):
            abandon_workers(stopped.exit_code)
        return stopped
