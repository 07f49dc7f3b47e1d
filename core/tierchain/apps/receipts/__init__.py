"""Warehouse receipts with goods flows (issue 20, item 2; docs/finance_receipts.md).

The ``receipts`` app (``app.APP``, built in, named in a chain's ``[chain] apps`` after
``finance``, whose organizations act in it): "control the goods".

* ``codes.py`` — op and refusal codes, domains, state keys, ids, records, limits;
* ``store.py`` — loading, checking and saving receipts in a handler;
* ``issue.py`` — issue (with an anchored receipt document), attach an anchor, close;
* ``goods.py`` — the warehouse's IoT feed: batches of goods-in/goods-out with sequence
  numbers; anomalies refused *and recorded*;
* ``offers.py`` — transfer and pledge (two-step), the pledgee's release, partial
  release of goods, default;
* ``split.py`` — split into parts summing exactly to the balance;
* ``lineage.py`` — lineage / penetration and stock queries as JSON;
* ``client.py`` — ``Receipts`` / ``ReceiptsParty``: derives every declared key.

It imports the engine and finance's organization and evidence records; the engine imports
none of it.
"""
