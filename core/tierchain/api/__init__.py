"""The node's network surface.

* ``rpc.py`` — the local HTTP endpoint of ``tierchain node run`` (binary in, JSON out)
  and its client ``NodeClient``.
"""
