package tierchain

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// Signed API calls (docs/api.md, "Authentication and limits"; core/tierchain/api/auth.py).
const (
	MetaKey       = "tierchain-key"
	MetaTime      = "tierchain-time"
	MetaSignature = "tierchain-signature"
)

// CallMessage is what a caller signs for one call: H_api(method || 0 || time || 0 ||
// H_api(request bytes)), H_api the suite's hash in the domain "tierchain 2026 api request"
// and method the full gRPC path ("/tierchain.api.v1.Node/GetHead").
func CallMessage(method string, timeMs int64, request []byte) Digest {
	body := H(CtxAPIRequest, request)
	return H(CtxAPIRequest, []byte(method), []byte{0}, []byte(strconv.FormatInt(timeMs, 10)), []byte{0}, body[:])
}

// SignCalls is a unary interceptor that signs every call with key: it adds the three
// tierchain-* metadata entries over the request's protobuf bytes (those gRPC sends: the
// same deterministic encoding of the same message).
func SignCalls(key ed25519.PrivateKey) grpc.UnaryClientInterceptor {
	pk := hex.EncodeToString(key.Public().(ed25519.PublicKey))
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoker grpc.UnaryInvoker, opts ...grpc.CallOption,
	) error {
		msg, ok := req.(proto.Message)
		if !ok {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		raw, err := proto.Marshal(msg)
		if err != nil {
			return err
		}
		t := time.Now().UnixMilli()
		m := CallMessage(method, t, raw)
		ctx = metadata.AppendToOutgoingContext(ctx,
			MetaKey, pk,
			MetaTime, strconv.FormatInt(t, 10),
			MetaSignature, hex.EncodeToString(ed25519.Sign(key, m[:])),
		)
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}
