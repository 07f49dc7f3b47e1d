"""Byte formats: what a transaction, a batch, a block and a stored record look like.

Data flow: a client encodes and signs a transaction (``tx``); admission decodes a
buffer of framed transactions into numpy columns once (``batch.decode_batch``) and the
block is cut from those columns (``batch.gather``); the block's header and receipts
have canonical encodings and hashes (``block``); storage tables and on-chain records
use the total, canonical typed codecs of ``codec``.

* ``tx.py`` — one transaction: canonical encoding, the pure-Python reference decoder,
  ``frame`` (spec: docs/wire-format.md);
* ``batch.py`` — many framed transactions -> columns (``tierchain._hot.decode_frames``)
  and tx ids (the suite's ``tx_ids``); ``gather`` builds a block without re-decoding;
* ``block.py`` — headers (hash-chained, signed), receipts and events;
* ``codec.py`` — typed key/value codecs (every decoder fuzzed, tests/state/test_storage.py).

Invariant: ``tx.decode`` and ``batch.decode_batch`` return the same reject code for
every input (fuzzed together). This package imports no engine, state or app module.
"""
