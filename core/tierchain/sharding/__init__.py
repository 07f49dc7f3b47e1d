"""Sharding: N chains behind one scheduler, local processes or remote servers (docs/sharding.md).

Data flow: the scheduler (``cluster.Cluster``) decodes a batch, routes every
transaction by its keys (``tierchain.engine.route``) and sends each shard its
sub-batch over a link (``link``: a pipe to a local process or a gRPC stream), as
explicit messages (``codec``, never pickle); each shard is a ``Chain`` answering them
(``server``). A local shard takes the tx ids the scheduler computed with the frames
and does not hash them again; a remote one, whose peer is not authenticated, is sent
the frames alone (``link``, "Trust"). The cluster is described by one TOML file (``config``).

* ``cluster.py`` — the scheduler: routing, backpressure, heartbeats, restarts;
* ``link.py`` — ``LocalLink`` / ``RemoteLink``: connect, send, receive, reset;
* ``codec.py`` — the scheduler <-> shard message schema and codec;
* ``server.py`` — the shard side: ``ShardSession``, the local process body, ``ShardServer``;
* ``config.py`` — ``ClusterSpec``: the cluster's TOML file.

Cross-shard transfers are an app (``tierchain.apps.xshard``) driven by
``tierchain.apps.coordinator``.
"""
