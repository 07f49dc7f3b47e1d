"""Where large record versions live: a content-addressed store of sealed bytes off chain.

A version larger than ``codes.inline_bytes_max`` puts only its digest and size on chain
(``access.Version``); its sealed bytes (``envelope.SealedRecord.encode()``, ciphertext
only: useless without a released data key) are kept here, one file per version named by
the hex of its digest (``access.sealed_digest`` in the chain's suite). A name says nothing
of the document: it is the digest of a ciphertext under a fresh data key and nonce (of the
document framed with a fresh salt), so two versions of the same document have unrelated
names, and nobody can find a guessed document's file by hashing it. How the files
reach a reader (a shared volume, an object store synced between members, a copy handed
over) is outside the ledger; what the store guarantees is that:

* ``put`` is atomic and idempotent: a temp file in the same directory, fsynced, then
  renamed over the name; a crash leaves either no file or the whole file (and at worst
  a stray temp file, which ``get`` never reads);
* ``get`` returns only bytes whose digest is the name asked for (``AttachmentCorrupt``
  otherwise): a damaged or substituted file is refused, never returned;
* sizes are bounded (``codes.sealed_bytes_max``) and names are digests only, so no
  caller-chosen path is ever opened.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from tierchain.apps.sharing import codes as c
from tierchain.apps.sharing.access import sealed_digest
from tierchain.crypto import ED25519_BLAKE3, CryptoSuite
from tierchain.errors import TierChainError

__all__ = ["AttachmentCorrupt", "AttachmentError", "AttachmentMissing", "AttachmentStore"]


class AttachmentError(TierChainError):
    """An attachment refused: too large, or a digest that is not one."""


class AttachmentMissing(AttachmentError):
    """The store holds no file for that digest."""


class AttachmentCorrupt(AttachmentError):
    """Sealed bytes whose digest or size is not the one they are named by (or the chain records)."""


class AttachmentStore:
    """Sealed bytes by digest, in one directory, in one crypto suite (the chain's)."""

    def __init__(self, directory: str | os.PathLike[str], suite: CryptoSuite = ED25519_BLAKE3) -> None:
        self.directory, self.suite = Path(directory), suite
        self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, digest: bytes) -> Path:
        if not isinstance(digest, bytes) or len(digest) != self.suite.digest_bytes:
            raise AttachmentError(f"a digest is {self.suite.digest_bytes} bytes")
        return self.directory / digest.hex()

    def digest(self, sealed: bytes) -> bytes:
        return sealed_digest(sealed, suite=self.suite)

    def put(self, sealed: bytes) -> bytes:
        """Store ``sealed`` and return its digest (a no-op if an intact copy is there)."""
        sealed = bytes(sealed)
        if not 1 <= len(sealed) <= c.sealed_bytes_max:
            raise AttachmentError(f"sealed bytes are 1 to {c.sealed_bytes_max} bytes, got {len(sealed)}")
        digest = self.digest(sealed)
        path = self._path(digest)
        with contextlib.suppress(AttachmentError):
            self.get(digest)
            return digest  # already there, intact
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(sealed)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        _fsync_dir(self.directory)
        return digest

    def has(self, digest: bytes) -> bool:
        return self._path(digest).is_file()

    def get(self, digest: bytes) -> bytes:
        """The bytes stored under ``digest``, checked: ``AttachmentMissing`` if absent,
        ``AttachmentCorrupt`` if they are too large or do not hash to ``digest``."""
        path = self._path(digest)
        try:
            with open(path, "rb") as f:
                data = f.read(c.sealed_bytes_max + 1)
        except FileNotFoundError:
            raise AttachmentMissing(f"no attachment {digest.hex()}") from None
        if len(data) > c.sealed_bytes_max or self.digest(data) != digest:
            raise AttachmentCorrupt(f"attachment {digest.hex()} does not match its digest")
        return data


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
