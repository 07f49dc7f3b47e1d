package tierchain

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
)

// Limits of the transaction wire format, version 1 (core/tierchain/limits.py).
const (
	WireVersion     = 1
	PublicKeyBytes  = 32
	SignatureBytes  = 64
	KeyBytesMax     = 64
	TxKeysMax       = 32
	PayloadBytesMax = 4096
	txFixedHead     = 1 + 4 + 2 + 2 + PublicKeyBytes + 8 + 8 + 1 + 1 // version .. n_write
)

// Accounts app (core/tierchain/apps/accounts.py).
const (
	OpRegister = 1
	OpTransfer = 2
	AmountMax  = math.MaxInt64 // a transfer moves 1..2^63-1 minor units
)

// AccountKey is the state key of an account's registration record: "acct/" || public key.
func AccountKey(publicKey []byte) []byte { return append([]byte("acct/"), publicKey...) }

// BalanceKey is the state key of an account's balance (u64 LE): "bal/" || public key.
func BalanceKey(publicKey []byte) []byte { return append([]byte("bal/"), publicKey...) }

// Tx is one transaction (docs/wire-format.md, section 1); Signature is empty until signed.
type Tx struct {
	ChainID   uint32
	ShardID   uint16
	Op        uint16
	Sender    []byte // 32-byte Ed25519 public key
	Nonce     uint64
	ExpiresAt uint64 // last block height that may include it; 0: no expiry
	Reads     [][]byte
	Writes    [][]byte
	Payload   []byte
	Signature []byte
}

// Transfer is the accounts transfer of amount from sender to to, with the keys it declares
// (as accounts.transfer builds them): reads acct/<to>, writes bal/<sender> and bal/<to>.
func Transfer(chainID uint32, sender []byte, nonce uint64, to []byte, amount uint64) (*Tx, error) {
	if len(to) != PublicKeyBytes || len(sender) != PublicKeyBytes {
		return nil, errors.New("sender and recipient are 32-byte public keys")
	}
	if bytes.Equal(to, sender) {
		return nil, errors.New("a transfer to oneself is refused by the chain")
	}
	if amount == 0 || amount > AmountMax {
		return nil, fmt.Errorf("amount %d is out of 1..%d", amount, uint64(AmountMax))
	}
	writes := [][]byte{BalanceKey(sender), BalanceKey(to)}
	sort.Slice(writes, func(i, j int) bool { return bytes.Compare(writes[i], writes[j]) < 0 })
	payload := make([]byte, 0, PublicKeyBytes+8)
	payload = append(payload, to...)
	payload = binary.LittleEndian.AppendUint64(payload, amount)
	return &Tx{
		ChainID: chainID,
		Op:      OpTransfer,
		Sender:  slices.Clone(sender),
		Nonce:   nonce,
		Reads:   [][]byte{AccountKey(to)},
		Writes:  writes,
		Payload: payload,
	}, nil
}

func checkKeys(keys [][]byte, what string) error {
	for i, k := range keys {
		if len(k) < 1 || len(k) > KeyBytesMax {
			return fmt.Errorf("%s key of %d bytes (1..%d)", what, len(k), KeyBytesMax)
		}
		if i > 0 && bytes.Compare(keys[i-1], k) >= 0 {
			return fmt.Errorf("%s keys must be strictly ascending", what)
		}
	}
	return nil
}

// Body is the canonical body (every byte but the signature); an error for any field a
// decoder would refuse.
func (t *Tx) Body() ([]byte, error) {
	if t.Op == 0 {
		return nil, errors.New("op 0 is reserved")
	}
	if len(t.Sender) != PublicKeyBytes {
		return nil, errors.New("the sender is a 32-byte public key")
	}
	if len(t.Reads)+len(t.Writes) > TxKeysMax {
		return nil, fmt.Errorf("%d keys (at most %d)", len(t.Reads)+len(t.Writes), TxKeysMax)
	}
	if err := checkKeys(t.Reads, "read"); err != nil {
		return nil, err
	}
	if err := checkKeys(t.Writes, "write"); err != nil {
		return nil, err
	}
	for _, r := range t.Reads {
		for _, w := range t.Writes {
			if bytes.Equal(r, w) {
				return nil, errors.New("a key is declared as read and write (declare it as a write)")
			}
		}
	}
	if len(t.Payload) > PayloadBytesMax {
		return nil, fmt.Errorf("payload of %d bytes (at most %d)", len(t.Payload), PayloadBytesMax)
	}
	out := make([]byte, 0, txFixedHead+4+len(t.Payload)+SignatureBytes+TxKeysMax*(1+KeyBytesMax))
	out = append(out, WireVersion)
	out = binary.LittleEndian.AppendUint32(out, t.ChainID)
	out = binary.LittleEndian.AppendUint16(out, t.ShardID)
	out = binary.LittleEndian.AppendUint16(out, t.Op)
	out = append(out, t.Sender...)
	out = binary.LittleEndian.AppendUint64(out, t.Nonce)
	out = binary.LittleEndian.AppendUint64(out, t.ExpiresAt)
	out = append(out, byte(len(t.Reads)), byte(len(t.Writes)))
	for _, k := range slices.Concat(t.Reads, t.Writes) {
		out = append(out, byte(len(k)))
		out = append(out, k...)
	}
	out = binary.LittleEndian.AppendUint32(out, uint32(len(t.Payload)))
	return append(out, t.Payload...), nil
}

// ID is the tx id: H("tierchain 2026 tx body", body). It is also the message the sender signs.
func (t *Tx) ID() (Digest, error) {
	body, err := t.Body()
	if err != nil {
		return Digest{}, err
	}
	return H(CtxTxBody, body), nil
}

// Sign sets the signature: Ed25519 by key (whose public key must be the sender) over the tx id.
func (t *Tx) Sign(key ed25519.PrivateKey) error {
	if !bytes.Equal(key.Public().(ed25519.PublicKey), t.Sender) {
		return errors.New("the signing key is not the sender's")
	}
	id, err := t.ID()
	if err != nil {
		return err
	}
	t.Signature = ed25519.Sign(key, id[:])
	return nil
}

// Encode is the signed transaction's wire bytes: body || signature.
func (t *Tx) Encode() ([]byte, error) {
	if len(t.Signature) != SignatureBytes {
		return nil, errors.New("the transaction is not signed")
	}
	body, err := t.Body()
	if err != nil {
		return nil, err
	}
	return append(body, t.Signature...), nil
}
