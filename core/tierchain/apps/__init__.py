"""The built-in apps: op sets registered with the engine as values (docs/architecture.md "Apps").

Each app module defines ``APP`` (a ``tierchain.engine.apps.App``: ops, op-code and
reject-code ranges, hash domains, roles, placement rules, genesis hook); a chain runs
the apps its genesis names. Importing this package registers nothing.

* ``accounts.py`` — ``accounts``: register and transfer (ops 1..2), roles ``registrar``
  and ``committee``, the genesis accounts; client builders (``transfer``, ``register``);
* ``xshard.py`` — ``xshard``: two-phase cross-shard transfers on the shards' own chains;
* ``coordinator.py`` — drives every pending cross-shard transfer (no state of its own);
* ``finance/`` — ``finance``: supply-chain finance (docs/finance.md);
* ``sharing/`` — ``sharing``: data sharing under control — authorized decryption with an
  on-chain access log, fingerprint-only shared lists, reconciliation (docs/privacy.md);
  built in, not in the default app set;
* ``bills/``, ``receipts/``, ``abs/``, ``tradefin/`` — the finance v2 products (digital
  bills, warehouse receipts, ABS pools, trade-finance messages; docs/finance.md), each an
  app on finance's organizations, built in, not in the default app set;
* ``records.py`` — fast construction of the apps' frozen records on handlers' hot paths.

Apps import the engine; the engine imports no app (tests/test_import_cycles.py).
"""
