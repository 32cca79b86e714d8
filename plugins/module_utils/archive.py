# Private to the caretaker.ops collection: the engine's API may change without notice.
"""Where archived rows go: a store with one operation, open(name) -> a writable binary file.

The file counts as stored only when the `with` block ends without an error: a local
directory renames a fsynced temporary file into place, so a crash leaves no half file
under the final name. Another store (S3) only has to keep the same promise.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

from .errors import CaretakerError


class LocalArchive:
    def __init__(self, directory):
        self.directory = directory

    def location(self, name):
        return os.path.join(self.directory, name)

    @contextlib.contextmanager
    def open(self, name):
        path = self.location(name)
        folder = os.path.dirname(path)
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".", suffix=".part", dir=folder)
        except OSError as exc:
            raise CaretakerError(f"cannot write the archive in {folder}: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "wb") as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
            _fsync_directory(folder)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def _fsync_directory(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def zstd_writer(handle, level):
    """A zstd stream writer over handle; closing it finishes the frame but keeps handle open."""
    import zstandard

    return zstandard.ZstdCompressor(level=level).stream_writer(handle, closefd=False)
