"""Content-addressed artifact store over any fsspec URL (local folder, S3 through s3fs).

Every artifact is identified by the SHA-256 of its bytes. Writes are atomic (readers never
see half an object) and write-once (an existing key is never overwritten with other bytes);
reads verify the hash, so silent corruption surfaces as ``ArtifactCorrupted``.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from dataclasses import dataclass

from fsspec.core import url_to_fs

_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$")


class ArtifactError(Exception):
    """Base class for artifact store errors."""


class ArtifactNotFound(ArtifactError):
    pass


class ArtifactCorrupted(ArtifactError):
    pass


class ArtifactConflict(ArtifactError):
    """A write-once key already holds different bytes."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ArtifactRef:
    sha: str
    path: str
    size: int


class ArtifactStore:
    """``put`` returns the SHA-256 key; ``get`` verifies it.

    ``url`` is an fsspec URL: ``file:///var/sigma/artifacts``, ``s3://bucket/prefix``.
    ``storage_options`` go to fsspec (for S3: ``endpoint_url``, ``key``, ``secret``); for s3
    URLs the endpoint can also come from ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``.
    """

    def __init__(self, url: str, **storage_options):
        self.url = url.rstrip("/")
        if self.url.startswith("s3://") and "endpoint_url" not in storage_options:
            endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
            if endpoint:
                storage_options["endpoint_url"] = endpoint
        self.fs, self.root = url_to_fs(self.url, **storage_options)
        self.root = self.root.rstrip("/")
        self._local = "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,))
        if self._local:
            self.fs.makedirs(self.root, exist_ok=True)

    # -- keys -------------------------------------------------------------------
    def _full(self, path: str) -> str:
        if not _NAME_RE.match(path) or ".." in path.split("/"):
            raise ValueError(f"invalid artifact path {path!r}")
        return f"{self.root}/{path}"

    @staticmethod
    def default_path(sha: str, prefix: str = "blobs", ext: str = "bin") -> str:
        return f"{prefix}/{sha}.{ext}"

    # -- operations -----------------------------------------------------------
    def put(self, data: bytes, *, prefix: str = "blobs", ext: str = "bin", path: str | None = None) -> ArtifactRef:
        """Store ``data`` and return its reference.

        ``path`` defaults to ``<prefix>/<sha>.<ext>``. Putting the same bytes twice is a
        no-op; putting different bytes at an existing path raises ``ArtifactConflict``.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("artifact data must be bytes")
        data = bytes(data)
        sha = sha256_hex(data)
        path = path or self.default_path(sha, prefix, ext)
        full = self._full(path)
        if self.fs.exists(full):
            existing = self._read(full)
            if sha256_hex(existing) != sha:
                raise ArtifactConflict(f"artifact {path} already exists with different content")
            return ArtifactRef(sha=sha, path=path, size=len(data))
        self._atomic_write(full, data)
        return ArtifactRef(sha=sha, path=path, size=len(data))

    def _atomic_write(self, full: str, data: bytes) -> None:
        parent = full.rsplit("/", 1)[0]
        if self._local:
            self.fs.makedirs(parent, exist_ok=True)
            tmp = f"{parent}/.tmp-{uuid.uuid4().hex}"
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            # os.link fails if the target appeared meanwhile: first writer wins, no overwrite.
            try:
                os.link(tmp, full)
            except FileExistsError:
                if sha256_hex(self._read(full)) != sha256_hex(data):
                    raise ArtifactConflict(f"artifact {full} was written concurrently with different content")
            finally:
                os.unlink(tmp)
        else:
            # An object store PUT is atomic: the object appears whole or not at all.
            self.fs.pipe_file(full, data)

    def _read(self, full: str) -> bytes:
        try:
            return self.fs.cat_file(full)
        except FileNotFoundError as exc:
            raise ArtifactNotFound(full) from exc

    def get(self, path: str, sha: str | None = None) -> bytes:
        """Read ``path`` and verify its SHA-256.

        With ``sha`` given the bytes must hash to it; without it the sha is taken from the
        file name (``<prefix>/<sha>.<ext>``), so every content-addressed read is verified.
        """
        data = self._read(self._full(path))
        expected = sha or self._sha_from_path(path)
        if expected is not None:
            actual = sha256_hex(data)
            if actual != expected:
                raise ArtifactCorrupted(f"artifact {path} is corrupted: expected sha256 {expected}, found {actual}")
        return data

    def get_by_sha(self, sha: str, prefix: str = "blobs", ext: str = "bin") -> bytes:
        if not _SHA_RE.match(sha):
            raise ValueError(f"not a sha256 hex digest: {sha!r}")
        return self.get(self.default_path(sha, prefix, ext), sha)

    @staticmethod
    def _sha_from_path(path: str) -> str | None:
        stem = path.rsplit("/", 1)[-1].split(".", 1)[0]
        return stem if _SHA_RE.match(stem) else None

    def exists(self, path: str) -> bool:
        return self.fs.exists(self._full(path))

    def delete(self, path: str) -> None:
        full = self._full(path)
        if self.fs.exists(full):
            self.fs.rm_file(full)

    def list(self, prefix: str = "") -> list[str]:
        base = self._full(prefix.rstrip("/")) if prefix else self.root
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return []
        root = self.root + "/"
        return sorted(p[len(root):] if p.startswith(root) else p for p in found if "/.tmp-" not in p)

    def check(self) -> None:
        """Health probe: the store answers a listing of its root."""
        if self._local:
            if not os.access(self.root, os.W_OK):
                raise ArtifactError(f"artifact root {self.root} is not writable")
        else:
            self.fs.ls(self.root.split("/", 1)[0], refresh=True)


def open_store(url: str, **storage_options) -> ArtifactStore:
    return ArtifactStore(url, **storage_options)


__all__ = [
    "ArtifactConflict",
    "ArtifactCorrupted",
    "ArtifactError",
    "ArtifactNotFound",
    "ArtifactRef",
    "ArtifactStore",
    "open_store",
    "sha256_hex",
]
