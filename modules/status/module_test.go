package status_test

import (
	"testing"

	"github.com/imsrv/imsrv/modules/status/statustest"
	"github.com/imsrv/imsrv/platform/kv/kvtest"
)

// TestService runs the status.Service contract suite on every KV backend,
// against the module in process and through its gRPC client and server.
func TestService(t *testing.T) {
	for _, b := range kvtest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			t.Run("local", func(t *testing.T) {
				t.Parallel()
				statustest.Run(t, b.Open, statustest.Local)
			})
			t.Run("grpc", func(t *testing.T) {
				t.Parallel()
				statustest.Run(t, b.Open, statustest.OverGRPC)
			})
		})
	}
	// Once over a real TCP connection, dialed as in production.
	t.Run("memory/tcp", func(t *testing.T) {
		t.Parallel()
		statustest.Run(t, kvtest.Memory, statustest.OverTCP)
	})
}
