package opencvfaces_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// startRegistry serves an in-memory OCI registry on 127.0.0.1 for the test's lifetime
// and returns its host:port.
func startRegistry(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(registry.New())
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}
