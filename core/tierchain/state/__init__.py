"""State: the chain's LMDB store and the commitment to its state.

Data flow: a block's writes go to storage in ONE write transaction (``storage``,
under the writer lock of ``writer_lock``); the flat ``state`` table is written back
through a per-block log (``log``); the state root comes from the chain's commitment
(``commitment.commitment_of``, chosen once): the sparse Merkle tree (``tree``) or the
benchmark-only interim chain (``interim_root``).

* ``storage.py`` — one LMDB environment per chain, the typed table registry;
* ``writer_lock.py`` — one writer per database (``flock``);
* ``log.py`` — logged write sets, flushed into ``state`` every K blocks, overlay reads;
* ``commitment.py`` — ``SmtCommitment`` (stored) | ``MemorySmtCommitment`` |
  ``InterimCommitment``: genesis, prepare, write, committed;
* ``tree.py`` — the versioned sparse Merkle tree in LMDB (Rust ``smt_apply``), proofs,
  historic reads, pruning;
* ``interim_root.py`` — BLAKE3 chain over sorted write sets (proves nothing).

Invariant: a block is committed all or nothing (one LMDB transaction, fsync'ed when
``sync = "full"``). This package imports no engine or app module.
"""
