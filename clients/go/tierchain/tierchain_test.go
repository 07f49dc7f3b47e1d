package tierchain

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The repository's wire vectors (tests/vectors/wire_valid.json): every field encodes to the
// committed bytes, the tx id is the committed one and the signature verifies over it.
func TestWireVectors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "tests", "vectors", "wire_valid.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vectors []struct {
		Name   string
		Hex    string
		TxID   string `json:"tx_id"`
		Fields struct {
			ChainID   uint32 `json:"chain_id"`
			ShardID   uint16 `json:"shard_id"`
			Op        uint16
			Sender    string
			Nonce     uint64
			ExpiresAt uint64 `json:"expires_at"`
			Reads     []string
			Writes    []string
			Payload   string
			Signature string
			Version   int
		}
	}
	if err := json.Unmarshal(raw, &vectors); err != nil {
		t.Fatal(err)
	}
	if len(vectors) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range vectors {
		f := v.Fields
		tx := &Tx{
			ChainID: f.ChainID, ShardID: f.ShardID, Op: f.Op, Sender: unhex(t, f.Sender), Nonce: f.Nonce,
			ExpiresAt: f.ExpiresAt, Payload: unhex(t, f.Payload), Signature: unhex(t, f.Signature),
		}
		for _, k := range f.Reads {
			tx.Reads = append(tx.Reads, unhex(t, k))
		}
		for _, k := range f.Writes {
			tx.Writes = append(tx.Writes, unhex(t, k))
		}
		got, err := tx.Encode()
		if err != nil || hex.EncodeToString(got) != v.Hex {
			t.Errorf("%s: encoding differs (%v)", v.Name, err)
		}
		id, err := tx.ID()
		if err != nil || hex.EncodeToString(id[:]) != v.TxID {
			t.Errorf("%s: tx id differs (%v)", v.Name, err)
		}
		if !ed25519.Verify(tx.Sender, id[:], tx.Signature) {
			t.Errorf("%s: the signature does not verify over the tx id", v.Name)
		}
	}
}

func TestTransferIsCanonicalAndSigned(t *testing.T) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	pk := []byte(key.Public().(ed25519.PublicKey))
	to := bytes.Repeat([]byte{0xee}, 32)
	tx, err := Transfer(9, pk, 3, to, 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Sign(key); err != nil {
		t.Fatal(err)
	}
	wire, err := tx.Encode()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := tx.ID()
	if !ed25519.Verify(pk, id[:], wire[len(wire)-SignatureBytes:]) || !bytes.Equal(wire[9:41], pk) {
		t.Fatal("bad signature or sender")
	}
	if bytes.Compare(tx.Writes[0], tx.Writes[1]) >= 0 || !bytes.Equal(tx.Reads[0], AccountKey(to)) {
		t.Fatal("declared keys are not canonical")
	}
	if binary.LittleEndian.Uint64(tx.Payload[32:]) != 5 || !bytes.Equal(tx.Payload[:32], to) {
		t.Fatal("payload is not recipient || amount u64 LE")
	}
	if _, err := Transfer(9, pk, 0, pk, 1); err == nil {
		t.Fatal("a self-transfer was built")
	}
	if _, err := Transfer(9, pk, 0, to, 0); err == nil {
		t.Fatal("a zero transfer was built")
	}
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32))
	if err := tx.Sign(other); err == nil {
		t.Fatal("signed with a key that is not the sender's")
	}
}

// docs/proofs.md, "Test vectors": a state of three keys at height 0 and a proof of each kind.
const (
	vectorRoot = "03f9e9732fa12fb0c691fc4e32583e444b0e5871e538f75065cd3831d2665e84"
	proofK4    = "01000000000000000000026b34030002e01fedfb6785630e6d4c50f6798d67f5b5f302be23f1dc99ffec6e2bff14df401bba3063e768aff165be08069638cffff60c60199a6a28a2bbc7e0416f792c5a0100000041"
	proofX12   = "0101000000000000000003783132020000e01fedfb6785630e6d4c50f6798d67f5b5f302be23f1dc99ffec6e2bff14df4073d00a6d0feb7679627824449bf6d7e53bd5eb85d4888cbeb05689fedfee2151"
	proofX0    = "010200000000000000000278300100005573ab4f57a4c10f109b90662a3ed5c03f9c05d7572e029b65504984fc3ded62c3824c10e2f5576cf71229b3115f3eb0625338521fa9a1849a3519fd84e9aa88119d36a55808c1206c33b4aebdb25688b681963120a5a3347cfe1a3312198993"
)

// A header at height 0 whose state_root is root (the signature is not checked here).
func headerWithRoot(t *testing.T, root string, height uint64) []byte {
	h := make([]byte, HeaderBytes)
	h[0] = 1
	binary.LittleEndian.PutUint64(h[5:13], height)
	copy(h[121:153], unhex(t, root))
	return h
}

func TestProofVectors(t *testing.T) {
	if hex.EncodeToString(EmptyHash[:]) != "e025d6122aa9cc36021af9dda0da50750aef28c2d0bc2c0b20e1dfd948e2863d" {
		t.Fatal("EMPTY differs from docs/proofs.md")
	}
	header := headerWithRoot(t, vectorRoot, 0)
	cases := []struct {
		key, proof string
		kind       uint8
		value      []byte
	}{
		{"k4", proofK4, KindPresent, []byte("A")},
		{"x12", proofX12, KindAbsentEmpty, nil},
		{"x0", proofX0, KindAbsentLeaf, nil},
	}
	for _, c := range cases {
		raw := unhex(t, c.proof)
		p, err := VerifyStateEncoded(header, raw, []byte(c.key))
		if err != nil {
			t.Fatalf("%s: %v", c.key, err)
		}
		if p.Kind != c.kind || !bytes.Equal(p.Value, c.value) || (c.value == nil) != (p.Value == nil) {
			t.Fatalf("%s: kind %d value %x", c.key, p.Kind, p.Value)
		}
		// another key, another height
		if _, err := VerifyStateEncoded(header, raw, []byte("k1")); err == nil {
			t.Fatalf("%s: verified for another key", c.key)
		}
		if _, err := VerifyStateEncoded(headerWithRoot(t, vectorRoot, 1), raw, []byte(c.key)); err == nil {
			t.Fatalf("%s: verified against another height", c.key)
		}
		// every single flipped bit, anywhere in the proof, is refused (canonical encoding)
		for i := range raw {
			for b := range 8 {
				bad := bytes.Clone(raw)
				bad[i] ^= 1 << b
				if _, err := VerifyStateEncoded(header, bad, []byte(c.key)); err == nil {
					t.Fatalf("%s: byte %d bit %d flipped still verifies", c.key, i, b)
				} else if !errors.Is(err, ErrProof) {
					t.Fatalf("%s: not a proof error: %v", c.key, err)
				}
			}
		}
		// a byte more or less
		if _, err := VerifyStateEncoded(header, append(bytes.Clone(raw), 0), []byte(c.key)); err == nil {
			t.Fatalf("%s: trailing byte accepted", c.key)
		}
		if _, err := VerifyStateEncoded(header, raw[:len(raw)-1], []byte(c.key)); err == nil {
			t.Fatalf("%s: truncated proof accepted", c.key)
		}
	}
	// A present key cannot be "proved" absent by its own leaf passed off as another's.
	present, _ := DecodeStateProof(unhex(t, proofK4))
	kh := H(CtxStateKey, []byte("k4"))
	forged := &StateProof{
		Kind: KindAbsentLeaf, Height: 0, Key: []byte("k4"), Siblings: present.Siblings,
		OtherKH: kh, OtherVH: H(CtxStateValue, []byte("A")),
	}
	if err := VerifyState(mustHeader(t, header), forged, []byte("k4")); err == nil {
		t.Fatal("the key's own leaf proved it absent")
	}
}

func mustHeader(t *testing.T, b []byte) *Header {
	h, err := DecodeHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHeaderDecodingAndSignature(t *testing.T) {
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	pk := []byte(key.Public().(ed25519.PublicKey))
	raw := headerWithRoot(t, vectorRoot, 4)
	binary.LittleEndian.PutUint32(raw[1:5], 9)
	copy(raw[153:185], pk)
	digest := H(CtxBlockHeader, raw[:185])
	copy(raw[185:], ed25519.Sign(key, digest[:]))
	h := mustHeader(t, raw)
	if h.ChainID != 9 || h.Height != 4 || hex.EncodeToString(h.StateRoot[:]) != vectorRoot || h.Hash != digest {
		t.Fatalf("fields: %+v", h)
	}
	if !h.SignedBy(pk) || h.SignedBy(bytes.Repeat([]byte{1}, 32)) {
		t.Fatal("signature check")
	}
	raw[20] ^= 1
	if mustHeader(t, raw).SignedBy(pk) {
		t.Fatal("a changed header still verifies")
	}
	if _, err := DecodeHeader(raw[:HeaderBytes-1]); err == nil {
		t.Fatal("a short header decoded")
	}
	raw[0] = 2
	if _, err := DecodeHeader(raw); err == nil {
		t.Fatal("header version 2 decoded")
	}
}
