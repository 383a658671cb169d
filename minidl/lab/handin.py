"""What the grader reads of a submission: plain files and folders, never a link, a device or a FIFO.

A submission is an entry of SUBMISSIONS: a folder holding a student copy (at its top or one
folder down) or an archive of one (ARCHIVES). An archive is measured before anything is
written (its members' count, their unpacked bytes, that size over the archive's, the depth of
their paths, LIMITS) and unpacked with tarfile's data filter (nothing outside the folder, no
devices). A file is read by read_source: every folder on its path opened without following a
link, the file itself opened non-blocking (a FIFO cannot stall the grader) and read only if it
is a regular file of at most LIMITS.file_bytes.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


class SubmissionError(ValueError):
    """A submission, or a file of it, that the grader does not read; the message says why."""


@dataclass(frozen=True)
class Limits:
    """The most an archive may unpack to, and the largest source file read."""

    members: int = 20_000
    bytes: int = 512 << 20  # all members together, unpacked
    ratio: float = 100.0  # unpacked bytes per byte of the archive
    depth: int = 32  # folders in a member's path
    file_bytes: int = 4 << 20  # one source file


LIMITS = Limits()


def kind(mode: int) -> str:
    """What a file of this st_mode is, in words."""
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISDIR, "a folder"), (stat.S_ISREG, "a regular file")):  # fmt: skip
        if test(mode):
            return name
    return "not a file"


def handed_in_copy(path: Path, work: Path, limits: Limits = LIMITS) -> Path:
    """The student copy that the submission at `path` (a folder, or an archive unpacked under `work`) holds."""
    mode = path.lstat().st_mode
    if stat.S_ISREG(mode) and path.name.endswith(ARCHIVES):
        folder = work / "unpacked"
        unpack(path, folder, limits)
    elif stat.S_ISDIR(mode):
        folder = path
    else:
        raise SubmissionError(
            f"{path.name} is {kind(mode)}; a submission is a folder or an archive ({', '.join(ARCHIVES)})"
        )
    for candidate in (folder, *sorted(folder.iterdir())):
        if is_folder(candidate) and is_folder(candidate / "minidl"):
            return candidate
    raise SubmissionError(f"{path.name} holds no student copy (a folder with minidl/ in it, at the top or one down)")


def is_folder(path: Path) -> bool:
    """Whether path is a folder itself (a link to one is not)."""
    try:
        return stat.S_ISDIR(path.lstat().st_mode)
    except OSError:
        return False


def unpack(archive: Path, folder: Path, limits: Limits = LIMITS) -> None:
    """Unpack `archive` into `folder` once its members are measured against `limits` (SubmissionError if not)."""
    name = archive.name
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(archive) as z:
                measure(name, archive.stat().st_size, ((i.filename, i.file_size) for i in z.infolist()), limits)
                z.extractall(folder)  # zipfile drops absolute names and ".."; it reads no more than file_size
        else:
            with tarfile.open(archive) as t:
                measure(name, archive.stat().st_size, _tar_members(t), limits)
                t.extractall(folder, filter=tarfile.data_filter)  # nothing outside folder, no devices
    except SubmissionError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, OSError, ValueError, EOFError) as e:
        raise SubmissionError(f"{name} could not be unpacked: {e}") from None


def _tar_members(t: tarfile.TarFile):
    for member in t:  # read one at a time, so that measuring stops as soon as a limit is passed
        if member.issparse():
            raise SubmissionError(f"{member.name} is a sparse file; an archive of a student copy holds none")
        yield member.name, member.size


def measure(name: str, archive_bytes: int, members, limits: Limits) -> None:
    """Raise SubmissionError when the (member name, unpacked bytes) pairs pass a limit, as soon as they do."""
    count, total, most = 0, 0, limits.ratio * max(archive_bytes, 1)
    for member, size in members:
        count, total = count + 1, total + size
        depth = len(PurePosixPath(member).parts)
        problem = (
            f"more than {limits.members} members" if count > limits.members
            else f"more than {limits.bytes >> 20} MiB unpacked" if total > limits.bytes
            else f"more than {limits.ratio:g} times its own size unpacked" if total > most
            else f"a path of {depth} names (at most {limits.depth})" if depth > limits.depth
            else ""
        )  # fmt: skip
        if problem:
            raise SubmissionError(f"{name} was not unpacked: it holds {problem} (an archive bomb?)")


def read_source(copy: Path, path: Path, limits: Limits = LIMITS) -> str:
    """The text of copy/path (path relative, without ".."): SubmissionError if a folder on the way or the
    file is not what it should be (a link, a FIFO, a device, too large); FileNotFoundError if it is missing."""
    parts = path.parts
    fds = [os.open(copy, os.O_RDONLY | os.O_DIRECTORY)]
    try:
        for k, part in enumerate(parts):
            last = k == len(parts) - 1
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | (0 if last else os.O_DIRECTORY)
            try:
                fds.append(os.open(part, flags, dir_fd=fds[-1]))
            except OSError as e:
                if isinstance(e, FileNotFoundError):
                    raise
                mode = os.lstat(part, dir_fd=fds[-1]).st_mode
                what = "a file" if last else "a folder"
                where = PurePosixPath(*parts[: k + 1])
                raise SubmissionError(
                    f"{where} is {kind(mode)}, not {what}: the grader reads plain files in plain folders, "
                    "and nothing a link points to"
                ) from None
        info = os.fstat(fds[-1])
        if not stat.S_ISREG(info.st_mode):
            raise SubmissionError(f"{path} is {kind(info.st_mode)}, not a file: the grader reads plain files only")
        if info.st_size > limits.file_bytes:
            raise SubmissionError(f"{path} is {info.st_size} bytes, more than the {limits.file_bytes} a source is")
        with os.fdopen(fds.pop(), "rb") as f:
            return f.read(limits.file_bytes + 1).decode()
    finally:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
