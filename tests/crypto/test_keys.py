"""Key pairs, transaction signing and sealed key files (tierchain.crypto)."""

import json

import nacl.pwhash
import pytest

from tierchain import crypto
from tierchain.crypto import KeyFileDamaged, KeyPair, WrongPassphrase
from tierchain.wire import tx as txcodec

FAST_KDF = {"opslimit": nacl.pwhash.argon2id.OPSLIMIT_MIN, "memlimit": nacl.pwhash.argon2id.MEMLIMIT_MIN}


def _tx(keys: KeyPair) -> txcodec.Tx:
    return txcodec.Tx(
        chain_id=7,
        shard_id=0,
        op=1,
        sender=keys.public_key,
        nonce=3,
        writes=(b"acct/a", b"acct/b"),
        payload=b"\x01\x02",
    )


def test_signed_tx_verifies_and_tampering_fails():
    keys = KeyPair.from_seed(bytes(range(32)))
    tx = keys.sign_tx(_tx(keys))
    decoded = txcodec.decode(tx.encode())
    assert decoded == tx
    digest = txcodec.tx_id(decoded.body())
    assert crypto.verify(keys.public_key, digest, decoded.signature)
    other = txcodec.Tx(**{**{f: getattr(tx, f) for f in tx.__dataclass_fields__}, "nonce": 4})
    assert not crypto.verify(keys.public_key, txcodec.tx_id(other.body()), tx.signature)


def test_sign_tx_refuses_foreign_sender():
    a, b = KeyPair.generate(), KeyPair.generate()
    with pytest.raises(ValueError):
        a.sign_tx(_tx(b))


def test_seed_is_not_in_repr():
    keys = KeyPair.from_seed(b"\x42" * 32)
    assert "42" * 4 not in repr(keys)


def test_key_file_round_trip(tmp_path):
    keys = KeyPair.generate()
    path = tmp_path / "bank-a.key"
    crypto.save_key_file(path, keys, "correct horse", **FAST_KDF)
    assert path.stat().st_mode & 0o777 == 0o600
    assert crypto.load_key_file(path, "correct horse") == keys


def test_wrong_passphrase_is_named(tmp_path):
    path = tmp_path / "k.key"
    crypto.save_key_file(path, KeyPair.generate(), "right", **FAST_KDF)
    with pytest.raises(WrongPassphrase):
        crypto.load_key_file(path, "wrong")


@pytest.mark.parametrize("field", ["salt", "sealed_seed", "public_key", "opslimit"])
def test_altered_field_is_damaged_not_wrong_passphrase(tmp_path, field):
    path = tmp_path / "k.key"
    crypto.save_key_file(path, KeyPair.generate(), "pw", **FAST_KDF)
    doc = json.loads(path.read_text())
    value = doc[field]
    doc[field] = value + 1 if isinstance(value, int) else ("0" if value[0] != "0" else "1") + value[1:]
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyFileDamaged):
        crypto.load_key_file(path, "pw")


def test_every_truncation_is_damaged(tmp_path):
    path = tmp_path / "k.key"
    crypto.save_key_file(path, KeyPair.generate(), "pw", **FAST_KDF)
    raw = path.read_bytes()
    for cut in range(0, len(raw) - 2, 7):  # the last two bytes are "}\n"
        path.write_bytes(raw[:cut])
        with pytest.raises(KeyFileDamaged):
            crypto.load_key_file(path, "pw")


def test_resealed_public_key_mismatch_is_damaged(tmp_path):
    # A file whose checksum is recomputed (e.g. hand-edited) but whose public key
    # belongs to someone else must not load as that someone.
    path = tmp_path / "k.key"
    crypto.save_key_file(path, KeyPair.generate(), "pw", **FAST_KDF)
    doc = json.loads(path.read_text())
    del doc["checksum"]
    doc["public_key"] = KeyPair.generate().public_key.hex()
    doc["checksum"] = crypto._checksum(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyFileDamaged, match="public key"):
        crypto.load_key_file(path, "pw")


def test_excessive_kdf_cost_is_refused(tmp_path):
    path = tmp_path / "k.key"
    crypto.save_key_file(path, KeyPair.generate(), "pw", **FAST_KDF)
    doc = json.loads(path.read_text())
    del doc["checksum"]
    doc["memlimit"] = 1 << 40
    doc["checksum"] = crypto._checksum(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyFileDamaged, match="bounds"):
        crypto.load_key_file(path, "pw")


def test_missing_file_is_a_key_file_error(tmp_path):
    with pytest.raises(crypto.KeyFileError):
        crypto.load_key_file(tmp_path / "absent.key", "pw")
