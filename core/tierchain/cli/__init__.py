"""The ``tierchain`` command line (docs/operations.md); the console script is ``tierchain.cli.main:run``.

* ``main.py`` — the click group: init, keygen, node run, tx, state, verify, load, ...;
* ``cluster.py`` — ``shard serve`` and ``cluster start|stop|status``;
* ``finance.py`` — ``finance ...``;
* ``errors.py`` — one line on stderr and a named exit code for every failure;
* ``types.py`` — click parameter types (a malformed argument is refused while parsing);
* ``keys.py`` — the state keys users type (``nonce/<hex>``, ``bal/<hex>``, ...) and what
  their values mean; it knows the apps' key layouts, so it lives with the CLI.
"""
