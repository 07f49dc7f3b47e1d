"""Tools beside the ledger.

* ``loadgen.py`` — pre-signed workloads and the closed-loop load run (``tierchain load``).
"""
