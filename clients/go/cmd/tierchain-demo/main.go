// Command tierchain-demo is a small TierChain client in Go (docs/api.md, "A Go client"): over
// the node's gRPC API (stubs generated from node.proto) it builds and signs an accounts
// transfer, submits it and waits for its receipt, then asks for a proof of the recipient's
// balance and verifies it locally against the header served with it.
//
//	tierchain-demo --target 127.0.0.1:7701 --seed-hex <64 hex> --to <64 hex> --amount 5 --chain-id 9
//
// Progress goes to stderr; the last line on stdout is a JSON summary. Exit status 0 only if
// every step succeeded and the proof verified; 1 if a step failed; 2 for bad arguments.
package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	apiv1 "tierchain.example/api/v1"
	"tierchain.example/tierchain"
)

type options struct {
	target, seedHex, toHex, trustedHex string
	amount, chainID                    uint64
	waitS                              float64
	timeout                            time.Duration
	signCalls, tamper                  bool
}

// summary is the JSON line printed on success (and, with "error", on a failure after Submit).
type summary struct {
	ChainID      uint64 `json:"chain_id"`
	Suite        string `json:"suite"`
	Sender       string `json:"sender"`
	To           string `json:"to"`
	Amount       uint64 `json:"amount"`
	Nonce        uint64 `json:"nonce"`
	TxID         string `json:"tx_id"`
	Tx           string `json:"tx"`
	Admission    string `json:"admission"`
	Code         string `json:"code"`
	CodeNumber   uint32 `json:"code_number"`
	Height       uint64 `json:"height"`
	Events       int    `json:"events"`
	ProofKey     string `json:"proof_key"`
	ProofHeight  uint64 `json:"proof_height"`
	ProofBytes   int    `json:"proof_bytes"`
	StateRoot    string `json:"state_root"`
	Proposer     string `json:"proposer"`
	HeaderSigned bool   `json:"header_signed"`
	Found        bool   `json:"found"`
	Balance      uint64 `json:"balance"`
	Verified     bool   `json:"verified"`
	Tampered     bool   `json:"tampered"`
	Error        string `json:"error,omitempty"`
}

func main() {
	var o options
	flag.StringVar(&o.target, "target", "127.0.0.1:7701", "the node's gRPC address, host:port (plain text)")
	flag.StringVar(&o.seedHex, "seed-hex", "", "the sender's 32-byte Ed25519 seed, hex")
	flag.StringVar(&o.toHex, "to", "", "the recipient's 32-byte public key, hex")
	flag.Uint64Var(&o.amount, "amount", 1, "minor units to transfer")
	flag.Uint64Var(&o.chainID, "chain-id", 0, "the chain id the transfer is for (must match the node's)")
	flag.Float64Var(&o.waitS, "wait-s", 10, "how long Submit waits for the receipt, seconds (at most 60)")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Second, "bound on the whole run")
	flag.StringVar(&o.trustedHex, "trusted-proposer", "", "hex public key the proven header must be signed by (default: its own proposer)")
	flag.BoolVar(&o.signCalls, "sign-calls", false, "sign every call with the sender's key (nodes run with --api-auth org)")
	flag.BoolVar(&o.tamper, "tamper", false, "flip a byte of the proof before verifying it (the check must then fail)")
	flag.Parse()
	seed, to, trusted, err := o.parse()
	if err != nil {
		fmt.Fprintf(os.Stderr, "tierchain-demo: %v\n", err)
		flag.Usage()
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	s, err := run(ctx, &o, ed25519.NewKeyFromSeed(seed), to, trusted)
	if s != nil {
		if err != nil {
			s.Error = err.Error()
		}
		line, _ := json.Marshal(s)
		fmt.Println(string(line))
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "tierchain-demo: FAILED: %v\n", err)
		os.Exit(1)
	}
}

func (o *options) parse() (seed, to, trusted []byte, err error) {
	if flag.NArg() != 0 {
		return nil, nil, nil, fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if seed, err = hex.DecodeString(o.seedHex); err != nil || len(seed) != ed25519.SeedSize {
		return nil, nil, nil, errors.New("--seed-hex must be 64 hex digits")
	}
	if to, err = hex.DecodeString(o.toHex); err != nil || len(to) != tierchain.PublicKeyBytes {
		return nil, nil, nil, errors.New("--to must be 64 hex digits")
	}
	if o.trustedHex != "" {
		if trusted, err = hex.DecodeString(o.trustedHex); err != nil || len(trusted) != tierchain.PublicKeyBytes {
			return nil, nil, nil, errors.New("--trusted-proposer must be 64 hex digits")
		}
	}
	if o.chainID == 0 || o.chainID > 1<<32-1 {
		return nil, nil, nil, errors.New("--chain-id must be 1..2^32-1")
	}
	if o.amount == 0 || o.amount > tierchain.AmountMax {
		return nil, nil, nil, errors.New("--amount must be 1..2^63-1")
	}
	if !(o.waitS > 0 && o.waitS <= 60) {
		return nil, nil, nil, errors.New("--wait-s must be in (0, 60]")
	}
	return seed, to, trusted, nil
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

func run(ctx context.Context, o *options, key ed25519.PrivateKey, to, trusted []byte) (*summary, error) {
	dial := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if o.signCalls {
		dial = append(dial, grpc.WithUnaryInterceptor(tierchain.SignCalls(key)))
	}
	conn, err := grpc.NewClient(o.target, dial...)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", o.target, err)
	}
	defer conn.Close()
	node := apiv1.NewNodeClient(conn)
	sender := []byte(key.Public().(ed25519.PublicKey))

	// 1. What the node serves.
	info, err := node.GetInfo(ctx, &apiv1.GetInfoRequest{})
	if err != nil {
		return nil, fmt.Errorf("GetInfo: %w", err)
	}
	logf("node: chain %d, suite %s, apps %v, signed calls required: %v", info.ChainId, info.Suite, info.Apps, info.AuthRequired)
	if info.Suite != "ed25519-blake3" {
		return nil, fmt.Errorf("this client speaks the ed25519-blake3 suite; the node runs %s", info.Suite)
	}
	if info.ChainId != o.chainID {
		return nil, fmt.Errorf("the node serves chain %d, not %d", info.ChainId, o.chainID)
	}

	// 2. The sender's next nonce, then the transfer, built and signed here.
	n, err := node.GetNonce(ctx, &apiv1.GetNonceRequest{PublicKey: sender})
	if err != nil {
		return nil, fmt.Errorf("GetNonce: %w", err)
	}
	tx, err := tierchain.Transfer(uint32(o.chainID), sender, n.Nonce, to, o.amount)
	if err != nil {
		return nil, err
	}
	if err := tx.Sign(key); err != nil {
		return nil, err
	}
	wire, err := tx.Encode()
	if err != nil {
		return nil, err
	}
	id, _ := tx.ID()
	s := &summary{
		ChainID: info.ChainId, Suite: info.Suite, Sender: hex.EncodeToString(sender), To: hex.EncodeToString(to),
		Amount: o.amount, Nonce: n.Nonce, TxID: hex.EncodeToString(id[:]), Tx: hex.EncodeToString(wire),
	}
	logf("transfer %d from %x… to %x…, nonce %d, tx id %x (%d bytes)", o.amount, sender[:4], to[:4], n.Nonce, id, len(wire))

	// 3. Submit and wait for the receipt (durably committed).
	sub, err := node.Submit(ctx, &apiv1.SubmitRequest{Txs: [][]byte{wire}, WaitS: o.waitS})
	if err != nil {
		return s, fmt.Errorf("Submit: %w", err)
	}
	if len(sub.Admissions) != 1 {
		return s, fmt.Errorf("Submit answered %d admissions for 1 transaction", len(sub.Admissions))
	}
	adm := sub.Admissions[0]
	s.Admission = adm.Code
	if !bytes.Equal(adm.TxId, id[:]) {
		return s, fmt.Errorf("the node names the transaction %x, this client %x", adm.TxId, id)
	}
	if adm.Code != "OK" {
		return s, fmt.Errorf("the node refused the transaction: %s", adm.Code)
	}
	if sub.Timeout || len(sub.Receipts) != 1 {
		return s, fmt.Errorf("no receipt within %g s", o.waitS)
	}
	rc := sub.Receipts[0]
	s.Code, s.CodeNumber, s.Height, s.Events = rc.Code, rc.CodeNumber, rc.Height, len(rc.Events)
	logf("receipt: tx %x code %s (%d) at height %d, %d event(s)", rc.TxId, rc.Code, rc.CodeNumber, rc.Height, len(rc.Events))
	for _, e := range rc.Events {
		logf("  event %q %x", e.Topic, e.Data)
	}
	if !bytes.Equal(rc.TxId, id[:]) || rc.Code != "OK" {
		return s, fmt.Errorf("the transfer did not execute: %s", rc.Code)
	}

	// 4. The recipient's balance with its proof, verified here against the served header.
	balKey := tierchain.BalanceKey(to)
	s.ProofKey = hex.EncodeToString(balKey)
	sp, err := node.ProveState(ctx, &apiv1.ProveStateRequest{Key: balKey})
	if err != nil {
		return s, fmt.Errorf("ProveState: %w", err)
	}
	proofBytes := bytes.Clone(sp.Proof)
	if o.tamper && len(proofBytes) > 0 {
		proofBytes[len(proofBytes)-1] ^= 0x01
		s.Tampered = true
		logf("tampering: flipped the last byte of the %d-byte proof", len(proofBytes))
	}
	s.ProofBytes, s.ProofHeight = len(proofBytes), sp.Height
	header, err := tierchain.DecodeHeader(sp.Header)
	if err != nil {
		return s, err
	}
	s.StateRoot, s.Proposer = hex.EncodeToString(header.StateRoot[:]), hex.EncodeToString(header.Proposer[:])
	if uint64(header.ChainID) != o.chainID || header.Height != sp.Height || header.Height < rc.Height {
		return s, fmt.Errorf("the header (chain %d, height %d) is not one this proof or receipt can be read against",
			header.ChainID, header.Height)
	}
	want := trusted
	if want == nil {
		want = header.Proposer[:] // without a trusted key: only that the header is signed as it says
	}
	if s.HeaderSigned = header.SignedBy(want); !s.HeaderSigned {
		return s, fmt.Errorf("the header at height %d is not signed by %x", header.Height, want)
	}
	proof, err := tierchain.DecodeStateProof(proofBytes)
	if err == nil {
		err = tierchain.VerifyState(header, proof, balKey)
	}
	if err != nil {
		return s, fmt.Errorf("the proof of %x does not verify against the header at height %d: %w", balKey, header.Height, err)
	}
	s.Found = proof.Value != nil
	if s.Found != sp.Found || (s.Found && !bytes.Equal(proof.Value, sp.Value)) {
		return s, errors.New("the proof proves another value than the one served")
	}
	if !s.Found || len(proof.Value) != 8 {
		return s, fmt.Errorf("the proof shows no 8-byte balance for %x", balKey)
	}
	s.Balance = binary.LittleEndian.Uint64(proof.Value)
	s.Verified = true
	logf("proof verified: balance of %x… is %d at height %d (state root %x…, %d-byte proof)",
		to[:4], s.Balance, header.Height, header.StateRoot[:8], len(proofBytes))
	return s, nil
}
