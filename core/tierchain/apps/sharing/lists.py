"""(being written)"""

from __future__ import annotations

from tierchain.engine import apps

OPS = apps.OpTable()  # this module's ops (tierchain.apps.sharing.app)
