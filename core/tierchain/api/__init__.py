"""The node's network surface.

* ``rpc.py`` — the node's HTTP endpoint of ``tierchain node run`` (binary in, JSON out; the
  operator's ``/v1``) and its client ``NodeClient``; it also serves the network API's
  HTTP/JSON gateway, ``/metrics``, ``/health`` and ``/ready``.
* The network API (docs/api.md): ``proto/.../node.proto`` (the contract), ``schema.py``
  (its descriptors), ``service.py`` (every method, transport-independent), ``auth.py``
  (signed calls, per-caller limits), ``errors.py``, ``grpc_server.py``, ``gateway.py``
  (HTTP/JSON), ``openapi.py``, ``client.py`` (typed async Python client).
* ``metrics.py`` — Prometheus metrics and readiness (docs/operations.md).
"""
