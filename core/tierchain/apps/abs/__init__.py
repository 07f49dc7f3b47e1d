"""ABS pools with servicing reports (issue 20, item 3; docs/finance.md, "ABS pools").

The ``abs`` app (``app.APP``, built in, named in a chain's ``[chain] apps`` after
``finance``, whose organizations act in it):

* ``codes.py``   — op and refusal codes, roles, domains, the ``ab/`` layout, records, limits;
* ``assets.py``  — registration of underlying assets, cash-flow events, servicer changes;
* ``pools.py``   — pools: eligibility-checked selection, cut-off, transfer to a trust;
* ``stats.py``   — pool statistics and performance over time (pure functions, exact);
* ``client.py``  — ``Abs`` / ``AbsParty``: the API that derives every declared key;
* ``report.py``  — the servicing report (JSON, HTML, PNG charts) from chain data.

It imports the engine, finance's organization records and the sharing app's ledger
adapters; the engine imports none of it.
"""
