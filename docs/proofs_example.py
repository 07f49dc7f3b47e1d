"""A bank checks facts against a TierChain header without trusting the node (docs/proofs.md).

Run: ``PYTHONPATH=core python docs/proofs_example.py``

Part 1 plays the node operator: it runs a small chain and serves bytes (headers,
proofs). Part 2 plays the bank: it holds only the genesis header (obtained out
of band) and the proposer's public key, receives bytes, and checks them with
``tierchain.proofs`` alone — one pure-Python file a client can copy, with PyNaCl
for header signatures — and the key layout of docs/proofs.md (``bal/`` + public key).
"""

from __future__ import annotations

import dataclasses
import struct
import tempfile

import nacl.exceptions
import nacl.signing

from tierchain import proofs


def node_side(directory: str) -> dict:
    """The untrusted node: commit some transfers, then answer the bank's questions as bytes."""
    from tierchain.apps import accounts
    from tierchain.config import ChainConfig, GenesisAccount
    from tierchain.crypto import KeyPair
    from tierchain.engine.chain import Chain

    node = KeyPair.from_seed(b"node".ljust(32, b"\0"))
    buyer = KeyPair.from_seed(b"buyer".ljust(32, b"\0"))
    supplier = KeyPair.from_seed(b"supplier".ljust(32, b"\0"))
    config = ChainConfig(
        chain_id=42,
        block_interval_ms=5,
        genesis_accounts=(
            GenesisAccount(node.public_key, ("registrar", "committee")),
            GenesisAccount(buyer.public_key, (), 1_000_000),
            GenesisAccount(supplier.public_key, ()),
        ),
    )
    with Chain(directory, config, node) as chain:
        paid = []
        for nonce, amount in enumerate((250_000, 125_000)):
            tx = buyer.sign_tx(accounts.transfer(42, buyer.public_key, nonce, supplier.public_key, amount))
            sub = chain.submit([tx.encode()])
            assert sub.wait(10)[0].code == 0
            paid.append(sub.tx_ids[0])
        head = chain.height
        balance_key = accounts.balance_key(supplier.public_key)
        return {
            "proposer": node.public_key,
            "supplier": supplier.public_key,
            "headers": [chain.header(h).encode() for h in range(head + 1)],
            "balance_proof": chain.prove_state(balance_key, head).encode(),
            "old_balance_proof": chain.prove_state(balance_key, 1).encode(),
            "tx_id": paid[1],
            "tx_proof": chain.prove_tx(paid[1]).encode(),
            "absent_proof": chain.prove_state(accounts.balance_key(b"\x07" * 32), head).encode(),
        }


def nacl_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
        return True
    except (nacl.exceptions.BadSignatureError, ValueError):
        return False


def bank_side(served: dict) -> None:
    """The bank: trusts the genesis header and nothing the node says."""
    genesis, rest = served["headers"][0], served["headers"][1:]
    assert proofs.decode_header(genesis).proposer == served["proposer"]  # known out of band
    # 1. The header chain: hash links, heights, proposer signatures.
    assert proofs.verify_header_chain(genesis, rest, verify_signature=nacl_verify)
    head = proofs.decode_header(rest[-1])
    print(f"header chain verified up to height {head.height}")

    # 2. The supplier's balance at the head, against the head's state root.
    balance_key = b"bal/" + served["supplier"]  # docs/proofs.md, "State keys and values"
    proof = proofs.decode_state_proof(served["balance_proof"])
    assert proofs.verify_state(head, proof, balance_key)
    balance = struct.unpack("<Q", proof.value)[0]
    size = len(served["balance_proof"])
    print(f"supplier balance at height {proof.height}: {balance} (proof {size} bytes)")

    # 3. The balance at an older height, against that height's header.
    old = proofs.decode_state_proof(served["old_balance_proof"])
    assert proofs.verify_state(served["headers"][old.height], old, balance_key)
    print(f"supplier balance at height {old.height}: {struct.unpack('<Q', old.value)[0]}")

    # 4. A payment's inclusion and its receipt (code 0 = executed successfully).
    tx_proof = proofs.decode_tx_proof(served["tx_proof"])
    assert proofs.verify_tx(served["headers"][tx_proof.height], tx_proof, served["tx_id"])
    code = int.from_bytes(tx_proof.receipt[32:34], "little")
    where = f"tx {tx_proof.index} of block {tx_proof.height}"
    print(f"payment {served['tx_id'].hex()[:16]}… is {where}, code {code}")

    # 5. Absence: this account holds no balance.
    absent = proofs.decode_state_proof(served["absent_proof"])
    assert absent.value is None and proofs.verify_state(head, absent, b"bal/" + b"\x07" * 32)
    print("account 0707…07 holds no balance (non-inclusion proof verified)")

    # 6. A lying node is caught: inflate the balance in the proof.
    forged = dataclasses.replace(proof, value=struct.pack("<Q", balance * 10))
    assert not proofs.verify_state(head, forged, balance_key)
    print("a forged balance is rejected")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as d:
        bank_side(node_side(d))
