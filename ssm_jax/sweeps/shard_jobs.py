"""The jobs of a submitted sweep, followed from the store: members done (from the done
markers), each shard's job state, the failed shards named with their job ids and logs, and,
once every job has ended, the store checked and merged (`open_sweep`)."""

import dataclasses
from pathlib import Path
import time

ENDED_WELL = ("COMPLETED", "FINISHED")
"""submitit's states of a job that ended without error (SLURM's, and the local executor's)."""


@dataclasses.dataclass(frozen=True)
class ShardsProgress:
    """Where a submitted sweep stands.

    **Arguments:**

    - `members_done`, `members_total`: members in the store's done chunks, of the design's
      (0 of the design's size until the first chunk writes the manifest).
    - `states`: {shard: its job's state as the scheduler says it (e.g. PENDING, RUNNING,
      COMPLETED, FAILED)}.
    - `failed`: {shard: a line naming its job id, its state and its logs} for the shards whose
      job ended badly.
    """

    members_done: int
    members_total: int
    states: dict[int, str]
    failed: dict[int, str]


class ShardsFailed(RuntimeError):
    """Some shards' jobs ended without finishing their chunks: the message names each one with
    its job id and logs, and how to finish the sweep (submit again with resume, which runs
    only the shards with chunks left)."""


class ShardJobs:
    """The jobs of `submit`, by shard.

    **Arguments:**

    - `store`: the store folder.
    - `shards`: N.
    - `jobs`: {shard: submitit job}; only the shards submitted (with `resume`, those with
      chunks left).
    - `executor`: the submitit executor.
    """

    def __init__(self, store, shards: int, jobs: dict, executor):
        self.store, self.shards, self.jobs, self.executor = Path(store), shards, jobs, executor

    def __repr__(self) -> str:
        ids = ", ".join(f"{i}: {job.job_id}" for i, job in self.jobs.items())
        return f"ShardJobs(store='{self.store}', shards={self.shards}, jobs={{{ids}}})"

    def progress(self, total: int | None = None) -> ShardsProgress:
        """Reads where the sweep stands: the store's done markers (sizes only) and the jobs'
        states.

        **Arguments:**

        - `total`: the design's size, shown before the manifest is written.

        **Returns:** a `ShardsProgress`.
        """
        from .store import read_manifest, stored_chunks

        manifest = read_manifest(self.store, "store")
        done = members = 0
        if manifest is not None:
            size, members = manifest["chunk_size"], len(manifest["order"])
            done = sum(min(size, members - c * size) for c in stored_chunks(self.store))
        states = {i: job.state for i, job in self.jobs.items()}
        failed = {i: self.describe_failure(i) for i, job in self.jobs.items()
                  if job.done() and not _ended_well(job)}
        return ShardsProgress(done, members or total or 0, states, failed)

    def describe_failure(self, shard: int) -> str:
        """One line on a shard's job: its id, state, the last line of its error, its logs.

        **Arguments:**

        - `shard`: a shard's index.

        **Returns:** the line.
        """
        job = self.jobs[shard]
        error = job.stderr() or ""
        last = next((line.strip() for line in reversed(error.splitlines())
                     if line.strip() and not line.startswith(" ")), "")
        return (f"shard {shard}/{self.shards} (job {job.job_id}, {job.state}"
                + (f": {last}" if last else "") + f"; logs {job.paths.stdout}, "
                f"{job.paths.stderr})")

    def wait(self, progress=None, poll_seconds: float = 5.0, merge: bool = True):
        """Waits for every job, calling `progress` as the store fills, then merges the store.

        **Arguments:**

        - `progress`: called with a `ShardsProgress` at every poll, or None.
        - `poll_seconds`: seconds between two looks at the store and the jobs.
        - `merge`: whether to check the finished store and consolidate its metadata
          (`ssm-jax merge`) and return its dataset.

        **Returns:** the dataset of the finished sweep (`open_sweep`), or None without
        `merge`. Raises `ShardsFailed` naming every failed shard, once the others have ended.
        """
        from .run import open_sweep
        from .store import check_finished

        while True:
            ended = all(job.done() for job in self.jobs.values())
            now = self.progress()
            if progress is not None:
                progress(now)
            if ended:
                break
            time.sleep(poll_seconds)
        if now.failed:
            raise ShardsFailed(
                f"{len(now.failed)} of {self.shards} shards failed: "
                + "; ".join(now.failed[i] for i in sorted(now.failed))
                + f". {now.members_done} of {now.members_total} members are kept in "
                f"'{self.store}'; submit again with resume=True (--resume) to run the shards "
                "with chunks left.")
        if not merge:
            return None
        check_finished(self.store, "store", consolidate=True)
        return open_sweep(self.store, name="store")


def _ended_well(job) -> bool:
    """Whether a finished job ran to its end without error."""
    if job.state.split(" ")[0] not in ENDED_WELL:
        return False
    try:
        return job.exception() is None
    except Exception:  # no result: it never completed
        return False
