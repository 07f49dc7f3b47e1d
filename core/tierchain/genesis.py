"""Genesis state: what a chain holds before its first block.

Built from ``ChainConfig.genesis_accounts`` (accounts, roles, balances). The
chain writes it in the same LMDB transaction as header 0, and ``verify``
rebuilds it from the genesis stored in the database.
"""

from __future__ import annotations

import struct

from tierchain import ops
from tierchain.config import ChainConfig

_U64 = struct.Struct("<Q")


def genesis_writes(config: ChainConfig) -> dict[bytes, bytes | None]:
    writes: dict[bytes, bytes | None] = {}
    for acct in config.genesis_accounts:
        writes[ops.account_key(acct.public_key)] = ops.account_value(ops.roles_mask(acct.roles), 0)
        if acct.balance:
            writes[ops.balance_key(acct.public_key)] = _U64.pack(acct.balance)
    return writes
