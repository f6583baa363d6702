package registry_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/scivision-hpc/scv-hpc/internal/registry"
)

// basicAuth guards a registry with one user, the way a site registry behind nginx does.
func basicAuth(user, pass string) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="scv-test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"login"}]}`, http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

// TestOpenDockerConfigAuth reads credentials from a docker config.json ($DOCKER_CONFIG),
// as `docker login` writes it; wrong or missing credentials are ErrAuth.
func TestOpenDockerConfigAuth(t *testing.T) {
	guarded := false
	host := startRegistry(t, func(h http.Handler) http.Handler {
		g := basicAuth("alice", "s3cret")(h)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !guarded {
				h.ServeHTTP(w, r) // let the test push first
				return
			}
			g.ServeHTTP(w, r)
		})
	})
	img := platformImage(t, "linux", "amd64", 1)
	push(t, host+"/private/model:1", img)
	guarded = true

	for _, tt := range []struct {
		name, creds string
		wantErr     error
	}{
		{"right credentials", "alice:s3cret", nil},
		{"wrong password", "alice:nope", registry.ErrAuth},
		{"no entry", "", registry.ErrAuth},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := `{"auths":{}}`
			if tt.creds != "" {
				cfg = `{"auths":{"` + host + `":{"auth":"` + base64.StdEncoding.EncodeToString([]byte(tt.creds)) + `"}}}`
			}
			if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			t.Setenv("DOCKER_CONFIG", dir)
			o := fastOptions()
			o.Keychain = nil // the default: the docker config keychain
			_, src, err := registry.Open(context.Background(), host+"/private/model:1", o)
			if tt.wantErr == nil {
				if err != nil || src.Digest != digestOf(t, img) {
					t.Fatalf("Open: %v (%+v)", err, src)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), "docker login "+host) {
				t.Fatalf("Open: %v, want %v telling to docker login", err, tt.wantErr)
			}
		})
	}
}

// TestOpenUntrustedTLS: a registry whose certificate nobody trusts is unreachable, and
// the message says why.
func TestOpenUntrustedTLS(t *testing.T) {
	srv := httptest.NewTLSServer(ggcrregistry.New(ggcrregistry.Logger(nilLogger())))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	// "localhost" so that go-containerregistry tries TLS first and plain HTTP second.
	host = strings.Replace(host, "127.0.0.1", "localhost", 1)
	_, _, err := registry.Open(context.Background(), host+"/x/y:1", fastOptions())
	if !errors.Is(err, registry.ErrUnreachable) {
		t.Fatalf("Open: %v, want ErrUnreachable", err)
	}
	if !strings.Contains(err.Error(), "TLS certificate is not trusted") {
		t.Errorf("message %q does not say the certificate is untrusted", err)
	}
}
