"""A run's folder (--out): one writer at a time (a lock), a manifest of the files the last run of
each example wrote there, what a Ctrl-C leaves in it, and metrics as strict JSON."""

from __future__ import annotations

import fcntl
import json
import math
import os
from pathlib import Path

import numpy as np

from .options import ExperimentError

RUN_FILES = (".ckpt.npz", ".png")  # what a run writes in --out besides its lock and its manifest


RUN_FILES = (".ckpt.npz", ".png")  # what a run writes in --out besides its lock and its manifest
OWN = ".minidl-run"  # the start of the names of a run folder's own bookkeeping files:


OWN = ".minidl-run"  # the start of the names of a run folder's own bookkeeping files:
LOCK = OWN + ".lock"


LOCK = OWN + ".lock"
MANIFEST = OWN + ".{name}.json"  # the files that the last run of example {name} wrote in the folder


MANIFEST = OWN + ".{name}.json"  # the files that the last run of example {name} wrote in the folder
_LAST_RUN: list = []  # [--out, its kept checkpoints] of the last run started in this process


def lock_run_folder(folder: Path):
    """Make this run the one writer of `folder`: an exclusive advisory lock on folder/LOCK through a file
    of its own, so that two runs in one process (two threads, two notebooks) are two writers too. The
    lock is released when the returned file is closed (Experiment.close) or its process ends, however
    it ends (a dead run's lock never blocks). A folder another run holds is an ExperimentError naming it."""
    try:
        file = open(folder / LOCK, "a+")
    except OSError as e:
        raise ExperimentError(f"cannot lock the --out folder {folder}: {e.strerror}") from None
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.seek(0)
        holder = file.read().strip()
        file.close()
        raise ExperimentError(
            f"--out {folder} is in use by another run (process {holder or 'unknown'}); wait for it to end, "
            "or give another --out"
        ) from None
    file.seek(0)
    file.truncate()
    file.write(f"{os.getpid()}\n")
    file.flush()
    return file


def earlier_files(folder: Path, manifest: Path) -> list[str]:
    """The files of folder that the earlier run of manifest's example wrote (its manifest's, still there),
    and checkpoints that no manifest lists (written before runs kept manifests)."""

    def listed(path: Path) -> list[str]:
        try:
            return [str(n) for n in json.loads(path.read_text())["files"]]
        except (OSError, ValueError, KeyError, TypeError):
            return []

    others = {n for m in folder.glob(MANIFEST.format(name="*")) if m != manifest for n in listed(m)}
    unlisted = [p.name for p in sorted(folder.glob("*" + RUN_FILES[0])) if p.name not in others]
    files = [n for n in listed(manifest) if Path(n).name == n and (folder / n).is_file()]
    return list(dict.fromkeys(files + unlisted))


def kept_message() -> str:
    """What a Ctrl-C leaves of the last run started in this process (cli.run says it)."""
    if not _LAST_RUN:
        return "nothing was saved"
    out, kept = _LAST_RUN
    if not kept:
        return (f"no checkpoint was written yet in {out} (one comes every few minutes and after each epoch): "
                "nothing to resume")  # fmt: skip
    checkpoints = ", ".join(tag + RUN_FILES[0] + (f" ({where})" if where else "") for tag, where in kept.items())
    return f"kept in {out}: {checkpoints}; --resume continues from there"


def strict_json(metrics: dict) -> str:
    """metrics as strict JSON (RFC 8259: no NaN or Infinity tokens): a value that is not finite is written
    as null, and the key "not_finite" lists where."""
    where: list[str] = []

    def finite(value, path: str):
        if isinstance(value, dict):
            return {k: finite(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [finite(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            where.append(f"{path} ({value})")
            return None
        return value

    clean = finite(metrics, "")
    if where:
        clean["not_finite"] = where
    return json.dumps(clean, indent=2, allow_nan=False)


def _writable_folder(folder: Path, what: str) -> None:
    """Make `folder` if need be; an error that names `what` if it cannot be made or written in."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExperimentError(f"cannot make {what}: {e.strerror}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExperimentError(f"cannot write in {what} (permission denied)")
