"""The engine: admission, block production, the state transition, re-verification.

Generic over its apps (issue 15): it is given an app set (``apps``) and a crypto suite
(``tierchain.crypto``) as values and imports no app (tests/test_import_cycles.py).

Data flow, one chain:

1. ``mempool`` — admission: columnar checks on the decoded batch, batch signature
   verification, nonces, bounds, routing by the app set's placement (``route``);
2. ``chain`` — the solo engine, a facade (open, genesis, submit, subscribe, close) over
   ``submission`` (a batch's codes now, receipts at commit), ``pipeline`` (the producer
   cuts a block from admitted columns and runs the transition, the tree stage, the
   committer writes it in one LMDB transaction) and ``queries`` (reads, proofs);
3. ``transition`` — the pure state transition (block in; receipts, writes, roots out),
   used by ``chain``, ``verify`` and the recorded fixture (tests/vectors);
4. ``schedule`` — conflict waves from declared keys (``tierchain._hot.schedule``);
5. ``execute`` — op handlers wave by wave over a declared-key overlay (``TxContext``);
   a broken invariant stops the node before anything is committed;
6. ``genesis`` — the apps' genesis state, streamed in sorted chunks;
7. ``verify`` — re-execution of a whole chain from its database (``tierchain verify``).

``apps.py`` is the registry: ``App`` values, ``AppSet`` (disjoint claims), resolution by
name (built-ins, the ``tierchain.apps`` entry-point group, ``TIERCHAIN_APPS``).
``route.py`` (key -> shard) lives here, not in ``tierchain.sharding``, because
admission routes too; the sharding package uses the engine, never the reverse.
"""
