"""TierChain: a parallel ledger core for consortium supply-chain finance.

Layers (docs/architecture.md): ``wire`` (canonical encoding) -> ``crypto`` (keys,
batch signature checks in ``tierchain_native``) -> ``schedule`` (conflict waves in
``tierchain._hot``) -> ``merkle`` (BLAKE3 RFC 6962 trees in ``tierchain_native``).
"""

__version__ = "0.1.0"
