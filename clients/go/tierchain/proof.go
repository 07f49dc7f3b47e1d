package tierchain

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
)

// Light-client verification of a state proof (docs/proofs.md, "Specification";
// core/tierchain/proofs.py: decode_header, decode_state_proof, state_root_from_proof,
// verify_state_encoded), for the ed25519-blake3 suite.

const (
	HeaderBytes        = 249 // 185 unsigned bytes, then the proposer's 64-byte signature
	headerUnsigned     = 185
	ProofVersion       = 1
	StateKeyBytesMax   = 64
	StateValueBytesMax = 64 << 10
	DepthMax           = 256
)

// State proof kinds.
const (
	KindPresent     = 0 // the key's own leaf
	KindAbsentEmpty = 1 // the key's path ends at an empty subtree
	KindAbsentLeaf  = 2 // the key's path ends at another key's leaf
)

// ErrProof: bytes that are not a canonical encoding, or a proof that does not verify.
var ErrProof = errors.New("state proof")

func proofErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrProof, fmt.Sprintf(format, args...))
}

// Header is a decoded block header (docs/proofs.md, "Header").
type Header struct {
	Version     uint8
	ChainID     uint32
	Height      uint64
	PrevHash    Digest
	TimestampMs uint64
	TxCount     uint32
	TxRoot      Digest
	ReceiptRoot Digest
	StateRoot   Digest
	Proposer    Digest // the proposer's Ed25519 public key
	Signature   [SignatureBytes]byte
	Hash        Digest // H(BLOCK_HEADER, the 185 unsigned bytes): what the proposer signs
}

// DecodeHeader parses a header's 249 wire bytes (version 1).
func DecodeHeader(b []byte) (*Header, error) {
	if len(b) != HeaderBytes {
		return nil, proofErr("a header is %d bytes, got %d", HeaderBytes, len(b))
	}
	if b[0] != 1 {
		return nil, proofErr("header version %d", b[0])
	}
	le := binary.LittleEndian
	h := &Header{
		Version:     b[0],
		ChainID:     le.Uint32(b[1:5]),
		Height:      le.Uint64(b[5:13]),
		TimestampMs: le.Uint64(b[45:53]),
		TxCount:     le.Uint32(b[53:57]),
		Hash:        H(CtxBlockHeader, b[:headerUnsigned]),
	}
	copy(h.PrevHash[:], b[13:45])
	copy(h.TxRoot[:], b[57:89])
	copy(h.ReceiptRoot[:], b[89:121])
	copy(h.StateRoot[:], b[121:153])
	copy(h.Proposer[:], b[153:185])
	copy(h.Signature[:], b[185:])
	return h, nil
}

// SignedBy reports whether the header carries a valid Ed25519 signature by proposer over
// its hash (and names proposer as its proposer). Go's crypto/ed25519 accepts a subset of
// what the chain's ZIP-215 rule accepts: it never accepts a header the chain would refuse.
func (h *Header) SignedBy(proposer []byte) bool {
	return len(proposer) == PublicKeyBytes && bytes.Equal(h.Proposer[:], proposer) &&
		ed25519.Verify(ed25519.PublicKey(h.Proposer[:]), h.Hash[:], h.Signature[:])
}

// StateProof is a decoded state proof: the value of Key at Height (Value nil: absent).
type StateProof struct {
	Kind     uint8
	Height   uint64
	Key      []byte
	Value    []byte   // kind 0 only (may be empty, never nil then)
	Siblings []Digest // sibling i is at depth i + 1 on the key's path, root side first
	OtherKH  Digest   // kind 2 only: the other leaf
	OtherVH  Digest
}

type reader struct {
	b   []byte
	pos int
}

func (r *reader) take(n int) ([]byte, bool) {
	if n < 0 || len(r.b)-r.pos < n {
		return nil, false
	}
	out := r.b[r.pos : r.pos+n]
	r.pos += n
	return out, true
}

// DecodeStateProof parses canonical proof bytes (docs/proofs.md, "State proof encoding");
// any other form is an error.
func DecodeStateProof(data []byte) (*StateProof, error) {
	le := binary.LittleEndian
	r := &reader{b: data}
	head, ok := r.take(11)
	if !ok {
		return nil, proofErr("proof truncated")
	}
	p := &StateProof{Kind: head[1], Height: le.Uint64(head[2:10])}
	if head[0] != ProofVersion || p.Kind > KindAbsentLeaf {
		return nil, proofErr("unknown proof version or kind")
	}
	keyLen := int(head[10])
	if keyLen < 1 || keyLen > StateKeyBytesMax {
		return nil, proofErr("key length out of bounds")
	}
	key, ok := r.take(keyLen)
	if !ok {
		return nil, proofErr("proof truncated")
	}
	p.Key = bytes.Clone(key)
	d, ok := r.take(2)
	if !ok {
		return nil, proofErr("proof truncated")
	}
	depth := int(le.Uint16(d))
	if depth > DepthMax {
		return nil, proofErr("proof deeper than the tree")
	}
	bitmap, ok := r.take((depth + 7) / 8)
	if !ok {
		return nil, proofErr("proof truncated")
	}
	if depth&7 != 0 && bitmap[len(bitmap)-1]>>(depth&7) != 0 {
		return nil, proofErr("non-zero padding bits in the bitmap")
	}
	p.Siblings = make([]Digest, depth)
	for i := range depth {
		if bitmap[i>>3]>>(i&7)&1 == 1 {
			p.Siblings[i] = EmptyHash
			continue
		}
		s, ok := r.take(DigestBytes)
		if !ok {
			return nil, proofErr("proof truncated")
		}
		copy(p.Siblings[i][:], s)
		if p.Siblings[i] == EmptyHash {
			return nil, proofErr("empty sibling carried in full (non-canonical)")
		}
	}
	switch p.Kind {
	case KindPresent:
		l, ok := r.take(4)
		if !ok {
			return nil, proofErr("proof truncated")
		}
		n := le.Uint32(l)
		if n > StateValueBytesMax {
			return nil, proofErr("value too long")
		}
		v, ok := r.take(int(n))
		if !ok {
			return nil, proofErr("proof truncated")
		}
		p.Value = append([]byte{}, v...)
	case KindAbsentLeaf:
		o, ok := r.take(2 * DigestBytes)
		if !ok {
			return nil, proofErr("proof truncated")
		}
		copy(p.OtherKH[:], o[:DigestBytes])
		copy(p.OtherVH[:], o[DigestBytes:])
	}
	if r.pos != len(data) {
		return nil, proofErr("trailing bytes after the proof")
	}
	return p, nil
}

// bit i of a key hash, most significant bit of byte 0 first.
func bit(h Digest, i int) byte { return (h[i>>3] >> (7 - (i & 7))) & 1 }

// Root is the state root the proof implies (steps 5-7 of "Verifying a state proof").
func (p *StateProof) Root() (Digest, error) {
	if len(p.Key) < 1 || len(p.Key) > StateKeyBytesMax || len(p.Siblings) > DepthMax {
		return Digest{}, proofErr("key or depth out of bounds")
	}
	kh := H(CtxStateKey, p.Key)
	depth := len(p.Siblings)
	var h Digest
	switch p.Kind {
	case KindPresent:
		if p.Value == nil || len(p.Value) > StateValueBytesMax {
			return Digest{}, proofErr("a present proof without a value")
		}
		vh := H(CtxStateValue, p.Value)
		h = H(CtxStateLeaf, kh[:], vh[:])
	case KindAbsentEmpty:
		h = EmptyHash
	case KindAbsentLeaf:
		// Soundness: the other leaf must not be the key's own leaf, or the key's real leaf
		// would pass as a proof that the key is absent.
		if p.OtherKH == kh {
			return Digest{}, proofErr("the other leaf is the key's own")
		}
		for i := range depth {
			if bit(p.OtherKH, i) != bit(kh, i) {
				return Digest{}, proofErr("the other leaf is not on the key's path")
			}
		}
		h = H(CtxStateLeaf, p.OtherKH[:], p.OtherVH[:])
	default:
		return Digest{}, proofErr("unknown kind %d", p.Kind)
	}
	for i := depth - 1; i >= 0; i-- {
		s := p.Siblings[i]
		if bit(kh, i) == 1 {
			h = H(CtxStateNode, s[:], h[:])
		} else {
			h = H(CtxStateNode, h[:], s[:])
		}
	}
	return h, nil
}

// VerifyState checks a decoded proof for key against a decoded header (steps 3-8): nil if it
// proves p.Value (or absence, p.Value nil) for key at the header's height.
func VerifyState(header *Header, p *StateProof, key []byte) error {
	if !bytes.Equal(p.Key, key) {
		return proofErr("the proof is about another key")
	}
	if p.Height != header.Height {
		return proofErr("the proof is for height %d, the header is at %d", p.Height, header.Height)
	}
	root, err := p.Root()
	if err != nil {
		return err
	}
	if root != header.StateRoot {
		return proofErr("the proof does not recompute the header's state_root")
	}
	return nil
}

// VerifyStateEncoded decodes the header and the proof, then VerifyState: the decoded proof
// if it verifies for key, else an error saying why.
func VerifyStateEncoded(header, proof, key []byte) (*StateProof, error) {
	h, err := DecodeHeader(header)
	if err != nil {
		return nil, err
	}
	p, err := DecodeStateProof(proof)
	if err != nil {
		return nil, err
	}
	if err := VerifyState(h, p, key); err != nil {
		return nil, err
	}
	return p, nil
}
