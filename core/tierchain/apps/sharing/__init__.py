"""Data sharing under control (issue 18): records whose owner decides who can read them.

* ``envelope.py`` — an encrypted record: the data under a fresh data key (the chain's
  crypto suite's authenticated cipher), the data key sealed to each reader's public key,
  and a canonical byte encoding for putting it on chain (docs/privacy.md, "Encrypted
  records").

Step 1 only: no ops and no app registration yet (grants, key releases and the access log
come next). It imports the crypto suite and nothing of the engine or of other apps.
"""
