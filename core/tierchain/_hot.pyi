"""Type stubs of the Cython module ``tierchain._hot`` (ext/cython/_hot.pyx).

Private: use ``tierchain.wire.batch``, ``tierchain.engine.schedule`` and ``tierchain.engine.route``.
"""

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from typing_extensions import Buffer

ROUTE_KEY: bytes
SENDER_OFFSET: int

def constants() -> dict[str, object]: ...
def siphash24(key: Buffer, data: Buffer) -> int: ...
def jump_hash(key: int, n_buckets: int) -> int: ...
def layout(public_key_bytes: int = 32, signature_bytes: int = 64) -> dict[str, int]: ...
def decode_frames(
    buf: Buffer, public_key_bytes: int = 32, signature_bytes: int = 64
) -> dict[str, np.ndarray]: ...
def schedule(
    buf: Buffer,
    code: npt.ArrayLike,
    key_first: npt.ArrayLike,
    key_start: npt.ArrayLike,
    key_len: npt.ArrayLike,
    n_read: npt.ArrayLike,
    n_write: npt.ArrayLike,
    sender: npt.ArrayLike,
    sender_is_write: bool = True,
) -> npt.NDArray[np.int32]: ...
def schedule_ids(
    key_ids: npt.ArrayLike, key_first: npt.ArrayLike, n_read: npt.ArrayLike, n_write: npt.ArrayLike
) -> npt.NDArray[np.int32]: ...
def route_keys(
    buf: Buffer,
    key_start: npt.ArrayLike,
    key_len: npt.ArrayLike,
    n_shards: int,
    rules: Sequence[tuple[bytes, int]] = (),
) -> npt.NDArray[np.uint16]: ...
