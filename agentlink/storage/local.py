"""Reports in a local folder: the default storage, and what the demo uses."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from agentlink.errors import StorageConfigError, StorageRejectedError, StorageUnavailableError
from agentlink.jobs import JobResult


class LocalStorage:
    """Writes reports below ``root`` atomically (temporary file, fsync, rename)."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def resolve(self, relative_path: str) -> Path:
        """The absolute file of a stored path; refuses paths that leave the root."""
        root = self.root.resolve()
        target = (root / relative_path).resolve()
        if not target.is_relative_to(root):
            raise StorageRejectedError(f"path {relative_path!r} leaves the output folder")
        return target

    def check(self) -> None:
        """The output folder can be created and written to."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / ".agentlink-write-test"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise StorageConfigError(
                f"cannot write to AGENTLINK_OUTPUT_DIR={self.root}: {exc}"
            ) from exc

    def save(self, relative_path: str, pdf: bytes) -> JobResult:
        """Write ``pdf`` to ``root/relative_path``, replacing any earlier version."""
        target = self.resolve(relative_path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(pdf)
                    handle.flush()
                    os.fsync(handle.fileno())
                Path(tmp).replace(target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            if exc.errno in {28, 122}:  # ENOSPC, EDQUOT: no retry will make room
                raise StorageRejectedError(f"no space left for {target}: {exc}") from exc
            raise StorageUnavailableError(f"cannot write {target}: {exc}") from exc
        return JobResult(storage=self.name, path=relative_path, bytes=len(pdf))
