"""Data sharing under control (issue 18; docs/privacy.md, "Data sharing under control").

The ``sharing`` app (``app.APP``, built in, named in a chain's ``[chain] apps`` beside
``finance``, whose organizations are its members):

* ``envelope.py`` — one encrypted version: the data under a fresh data key, the key
  sealed to each reader (the chain's crypto suite's cipher and sealing);
* ``access.py``, ``client.py``, ``attachments.py`` — authorized decryption: records,
  grants, key requests and releases (the ``sk/`` access log), regulator standing access;
  off-chain storage of large versions;
* ``lists.py``, ``list_client.py``, ``list_query.py`` — fingerprint-only shared lists
  under a committee-voted list key; signed, rate-limited queries (a node endpoint);
* ``recon.py``, ``recon_report.py``, ``recon_client.py`` — T+0 reconciliation of
  bilateral records by keyed digests (a node endpoint for the public report);
* ``codes.py`` (codes, layout, ids), ``members.py`` (membership checks over finance's
  organizations), ``ledger.py`` (the ledgers the clients run on; ``Result``).

It imports the engine, finance's organization records and the crypto suite; the engine
imports none of it.
"""
