// Package tierchain is a small Go client library for TierChain's default crypto suite,
// ed25519-blake3: the transaction wire format (docs/wire-format.md) with the accounts
// transfer, the tx id and its Ed25519 signature, signed API calls (docs/api.md), and the
// light-client check of a state proof against a block header (docs/proofs.md,
// "Specification"), written from those pages and core/tierchain/proofs.py.
//
// The gRPC messages and stubs are generated from the committed node.proto into
// tierchain.example/api/v1 by clients/go/build.sh; this package does not import them.
package tierchain

import "github.com/zeebo/blake3"

// DigestBytes is the size of every hash, tx id and Merkle root of the suite.
const DigestBytes = 32

// Hash contexts (BLAKE3 derive-key). Never change one: it changes every id. They are those
// of core/tierchain/domains.py and core/tierchain/proofs.py.
const (
	CtxTxBody      = "tierchain 2026 tx body"      // tx id == the message a sender signs
	CtxBlockHeader = "tierchain 2026 block header" // header hash: what the proposer signs
	CtxStateKey    = "tierchain 2026 state key"
	CtxStateValue  = "tierchain 2026 state value"
	CtxStateLeaf   = "tierchain 2026 state leaf"
	CtxStateNode   = "tierchain 2026 state node"
	CtxStateEmpty  = "tierchain 2026 state empty"
	CtxAPIRequest  = "tierchain 2026 api request" // a signed API call
)

// Digest is one 32-byte hash.
type Digest = [DigestBytes]byte

// H is the suite's domain-separated hash: BLAKE3 derive_key(context, data), 32 bytes.
func H(context string, data ...[]byte) Digest {
	h := blake3.NewDeriveKey(context)
	for _, d := range data {
		_, _ = h.Write(d)
	}
	var out Digest
	_, _ = h.Digest().Read(out[:])
	return out
}

// EmptyHash is H(STATE_EMPTY, ""): the hash of an empty subtree of the state tree.
var EmptyHash = H(CtxStateEmpty)
