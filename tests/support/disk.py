"""Small filesystems for the disk-trouble tests: a tmpfs of a few megabytes that can be
filled up, emptied again, and remounted read-only.

Mounting needs root (CI runs as root). Without it, or where the kernel refuses, the tests
that need it are skipped: SQLite's own errors can be provoked no other way without
limiting the whole process."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)


@contextlib.contextmanager
def small_disk(size: str = "4m") -> Iterator[Path]:
    """A fresh tmpfs of ``size``, unmounted (lazily, should a process still hold it) afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    where = Path(tempfile.mkdtemp(prefix="openxp-disk-"))
    mounted = _mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where))
    if mounted.returncode != 0:
        where.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)
        with contextlib.suppress(OSError):
            where.rmdir()


def fill(disk: Path, leave: int = 0) -> Path:
    """Fill ``disk`` until at most ``leave`` bytes are free; returns the filler (delete it to
    make room again)."""
    filler = disk / "filler"
    chunk = b"\0" * 65536
    with filler.open("ab") as out:
        while True:
            free = free_bytes(disk)
            if free <= leave:
                break
            try:
                out.write(chunk[: max(4096, min(len(chunk), free - leave))])
                out.flush()
            except OSError:
                break
    return filler


def free_bytes(disk: Path) -> int:
    stat = os.statvfs(disk)
    return stat.f_bavail * stat.f_frsize


def remount(disk: Path, mode: str) -> subprocess.CompletedProcess[str]:
    """``mode`` is ``ro`` or ``rw``. Read-only fails (EBUSY) while a process has a file open
    for writing on it."""
    return _mount("-o", f"remount,{mode}", str(disk))
