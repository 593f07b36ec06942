"""The done markers of a sweep store: `done/NNNNNN.json`, one per finished chunk, written once
the chunk's data are on disk. Besides the chunk's own numbers and its writer, a marker lists
every file the chunk wrote into the zarr store (its path under `results.zarr`, its size in
bytes and its sha256), so that a chunk whose files were later lost, cut or changed is known as
damaged instead of done. zarr writes no file for a chunk that holds only the fill value: the
marker records None for it, and a file found there is damage too.

A chunk is done when its marker is whole and its files check. Checking sizes costs a `stat`
per file, cheap enough for every look at the store; checking checksums reads every byte
(about a second per GB from the page cache), so it is left to the places that must not miss a
changed byte: a writer joining a store (it redoes what is damaged) and `check_finished`.

`done/` holds markers only. A marker that cannot be read (empty, cut, not a marker, another
chunk's) leaves its chunk not done, with the reason; a file named otherwise, or a marker of a
chunk past the plan's end, is ignored with a warning naming it. Hidden files are a writer's
temporary ones."""

from concurrent.futures import ThreadPoolExecutor
import hashlib
import json
import os
from pathlib import Path
import re
import warnings

_NAME = re.compile(r"(\d+)\.json")
_HASH = "sha256"


def record_files(root: Path, keys: list[str]) -> dict[str, dict | None]:
    """What a chunk wrote into the zarr store at `root`, flushed to disk first (a marker must
    never describe data that a crash can still lose).

    **Arguments:**

    - `root`: the zarr store's folder.
    - `keys`: the chunk's files, relative to `root` (each variable's chunk keys).

    **Returns:** {key: {"size": bytes, "sha256": hex digest}, or None where zarr wrote no file
    (the chunk's values are all the fill value)}.
    """
    files = {}
    for key in keys:
        try:
            with open(root / key, "rb") as f:
                digest = hashlib.file_digest(f, _HASH).hexdigest()
                os.fsync(f.fileno())
                files[key] = {"size": os.fstat(f.fileno()).st_size, _HASH: digest}
        except FileNotFoundError:
            files[key] = None
    return files


def write_marker(path: Path, marker: dict) -> None:
    """Writes `marker` as the JSON file `path`, whole or not at all (a private file, flushed,
    then renamed over `path`).

    **Arguments:**

    - `path`: the marker's file.
    - `marker`: JSON values.

    **Returns:** nothing.
    """
    atomic_write_text(path, json.dumps(marker), sync=True)


def atomic_write_text(path: Path, text: str, sync: bool = False) -> None:
    """Writes `text` to `path` through a hidden private file renamed into place, which is
    removed again where writing fails (a full disk leaves nothing).

    **Arguments:**

    - `path`: the file.
    - `text`: its contents.
    - `sync`: whether to flush the file and its folder to disk.

    **Returns:** nothing.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w") as f:
            f.write(text)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if sync:
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def verify_markers(store: Path, total: int,
                   checksums: bool) -> tuple[dict[int, dict], dict[int, str]]:
    """The done chunks of `store` and the damaged ones: those whose marker cannot be read or
    whose files do not check (`file_damage`).

    **Arguments:**

    - `store`: the store's folder.
    - `total`: the number of chunks in the plan.
    - `checksums`: whether to read every file (else sizes are checked).

    **Returns:** ({chunk: marker} for done chunks, {chunk: what is wrong} by chunk).
    """
    markers, damaged = read_markers(store, total)
    # hashlib lets go of the GIL: the chunks' files are read and hashed on several cores.
    def check(marker):
        return file_damage(store / "results.zarr", marker["files"], checksums)

    with ThreadPoolExecutor(min(8, os.cpu_count() or 1) if checksums else 1) as pool:
        found = dict(zip(list(markers), pool.map(check, markers.values()), strict=True))
    for index, damage in found.items():
        if damage:
            del markers[index]
            more = len(damage) - 3
            damaged[index] = "; ".join(damage[:3]) + (f"; and {more} more" if more > 0 else "")
    return markers, dict(sorted(damaged.items()))


def damage_listing(damaged: dict[int, str], limit: int = 5) -> str:
    """The damaged chunks (`verify_markers`) in words, the first `limit` with their reasons.

    **Arguments:**

    - `damaged`: {chunk: what is wrong}.
    - `limit`: how many to show.

    **Returns:** e.g. "chunk 2 (results.zarr/loss/c/2/0 is missing), chunk 3 (...)".
    """
    shown = [f"chunk {c} ({why})" for c, why in list(damaged.items())[:limit]]
    more = len(damaged) - limit
    return ", ".join(shown) + (f", and {more} more" if more > 0 else "")


def read_markers(store: Path, total: int) -> tuple[dict[int, dict], dict[int, str]]:
    """The markers in `store`'s `done/` folder, read and checked for form (not their files).

    **Arguments:**

    - `store`: the store's folder.
    - `total`: the number of chunks in the plan.

    **Returns:** ({chunk: marker} for whole markers, {chunk: why} for those that are not).
    Warns about, and ignores, files that are no marker of this plan's chunks.
    """
    markers, broken = {}, {}
    folder = store / "done"
    for path in sorted(folder.iterdir()) if folder.is_dir() else ():
        if path.name.startswith("."):
            continue
        match = _NAME.fullmatch(path.name)
        if match is None or int(match[1]) >= total or path.name != f"{int(match[1]):06d}.json":
            warnings.warn(f"'{path}' is ignored: `done/` holds the markers of a store's chunks, "
                          f"NNNNNN.json for the chunks 0 to {total - 1}; remove it.",
                          stacklevel=2)
            continue
        index = int(match[1])
        try:
            marker = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            why = "the file is empty" if _empty(path) else str(error)
            broken[index] = f"its marker done/{path.name} cannot be read ({why})"
            continue
        if not _is_marker(marker, index):
            broken[index] = (f"its marker done/{path.name} is not this chunk's marker "
                             f"(expected the keys chunk, with index {index}, writer and files)")
            continue
        markers[index] = marker
    return markers, broken


def _empty(path: Path) -> bool:
    try:
        return path.stat().st_size == 0
    except OSError:
        return False


def _is_marker(marker, index: int) -> bool:
    """Whether `marker` has the form `SweepStore.write` gives it, for chunk `index`."""
    def is_file(record):
        return record is None or (isinstance(record, dict) and isinstance(
            record.get("size"), int) and isinstance(record.get(_HASH), str))

    writer = marker.get("writer") if isinstance(marker, dict) else None
    return (isinstance(writer, dict) and isinstance(writer.get("processes"), int)
            and isinstance(writer.get("shard"), list) and len(writer["shard"]) == 2
            and isinstance(marker.get("chunk"), dict) and marker["chunk"].get("index") == index
            and isinstance(marker.get("files"), dict) and len(marker["files"]) > 0
            and all(is_file(r) for r in marker["files"].values()))


def file_damage(root: Path, files: dict[str, dict | None], checksums: bool) -> list[str]:
    """What is wrong with a chunk's files in the zarr store at `root`, against its marker.

    **Arguments:**

    - `root`: the zarr store's folder.
    - `files`: the marker's record of the files (`record_files`).
    - `checksums`: whether to read each file and compare its checksum, beyond its size.

    **Returns:** one line per damaged file (empty where all check), naming it from the store.
    """
    damage = []
    for key, record in files.items():
        path, shown = root / key, f"{root.name}/{key}"
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = None
        if record is None:
            if size is not None:  # values where the chunk wrote only the fill value
                damage.append(f"{shown} should not exist (the chunk wrote only fill values)")
        elif size is None:
            damage.append(f"{shown} is missing")
        elif size != record["size"]:
            damage.append(f"{shown} has {size} bytes, expected {record['size']}")
        elif checksums and _digest(path) != record[_HASH]:
            damage.append(f"{shown} has the wrong checksum ({_HASH})")
    return damage


def _digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, _HASH).hexdigest()
