package verify_test

import (
	"testing"

	"github.com/imsrv/imsrv/modules/verify"
	"github.com/imsrv/imsrv/modules/verify/verifytest"
	"github.com/imsrv/imsrv/platform/kv/kvtest"
)

// TestService runs the verify.Service contract suite on every KV backend,
// against the module in process and through its gRPC client and server.
func TestService(t *testing.T) {
	for _, b := range kvtest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			t.Run("local", func(t *testing.T) {
				t.Parallel()
				verifytest.Run(t, b.Open, verifytest.Local)
			})
			t.Run("grpc", func(t *testing.T) {
				t.Parallel()
				verifytest.Run(t, b.Open, verifytest.OverGRPC)
			})
		})
	}
	// Once over a real TCP connection, dialed as in production.
	t.Run("memory/tcp", func(t *testing.T) {
		t.Parallel()
		verifytest.Run(t, kvtest.Memory, verifytest.OverTCP)
	})
}

func TestNormalizeEmail(t *testing.T) {
	for in, want := range map[string]string{
		"a@b.c":             "a@b.c",
		" A@B.C ":           "a@b.c",
		"Alice@Example.COM": "alice@example.com",
	} {
		if got, err := verify.NormalizeEmail(in); err != nil || got != want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
