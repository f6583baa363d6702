package registry_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/scivision-hpc/scv-hpc/internal/registry"
)

// startRegistry serves go-containerregistry's in-process registry on 127.0.0.1,
// optionally behind a handler wrapper, and returns its host:port.
func startRegistry(t *testing.T, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = ggcrregistry.New(ggcrregistry.Logger(nilLogger()))
	if wrap != nil {
		h = wrap(h)
	}
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

// platformImage makes a random image whose config names the platform.
func platformImage(t *testing.T, os, arch string, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(1024, layers)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = os, arch
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func push(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	if err := remote.Write(mustRef(t, ref), img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

func pushIndex(t *testing.T, ref string, imgs ...v1.Image) v1.ImageIndex {
	t.Helper()
	var idx v1.ImageIndex = empty.Index
	idx = mutate.IndexMediaType(idx, types.OCIImageIndex)
	for _, img := range imgs {
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: cf.OS, Architecture: cf.Architecture},
		}})
	}
	if err := remote.WriteIndex(mustRef(t, ref), idx); err != nil {
		t.Fatalf("push index %s: %v", ref, err)
	}
	return idx
}

func digestOf(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// fastOptions retries quickly so failure tests stay fast.
func fastOptions() registry.Options {
	return registry.Options{RetryDelay: time.Millisecond, Keychain: authn.NewMultiKeychain()}
}

func TestOpenRegistry(t *testing.T) {
	host := startRegistry(t, nil)
	amd := platformImage(t, "linux", "amd64", 2)
	arm := platformImage(t, "linux", "arm64", 3)
	push(t, host+"/models/faces:1.0", amd)
	pushIndex(t, host+"/models/multi:latest", amd, arm)
	pushIndex(t, host+"/models/armonly:1", arm)

	closed := closedPort(t)
	tests := []struct {
		name       string
		ref        string
		platform   string
		offline    bool
		wantDigest string
		wantKind   error
		wantMsg    []string
	}{
		{name: "by tag", ref: host + "/models/faces:1.0", wantDigest: digestOf(t, amd)},
		{name: "by digest", ref: host + "/models/faces@" + digestOf(t, amd), wantDigest: digestOf(t, amd)},
		{name: "index default platform", ref: host + "/models/multi:latest", wantDigest: digestOf(t, amd)},
		{name: "index arm64", ref: host + "/models/multi:latest", platform: "linux/arm64", wantDigest: digestOf(t, arm)},
		{name: "index no match", ref: host + "/models/multi:latest", platform: "linux/s390x",
			wantKind: registry.ErrNoPlatform, wantMsg: []string{"no linux/s390x variant", "available: linux/amd64, linux/arm64"}},
		{name: "index only arm64", ref: host + "/models/armonly:1",
			wantKind: registry.ErrNoPlatform, wantMsg: []string{"no linux/amd64 variant", "available: linux/arm64"}},
		{name: "single image other platform", ref: host + "/models/faces:1.0", platform: "linux/arm64",
			wantKind: registry.ErrNoPlatform, wantMsg: []string{"available: linux/amd64"}},
		{name: "tag not found", ref: host + "/models/faces:9.9", wantKind: registry.ErrNotFound,
			wantMsg: []string{host + "/models/faces:9.9", "not found"}},
		{name: "repo not found", ref: host + "/models/nothing:1", wantKind: registry.ErrNotFound},
		{name: "unreachable", ref: closed + "/models/faces:1.0", wantKind: registry.ErrUnreachable,
			wantMsg: []string{"registry " + closed + " unreachable", "refused"}},
		{name: "offline", ref: host + "/models/faces:1.0", offline: true, wantKind: registry.ErrOffline,
			wantMsg: []string{host + "/models/faces:1.0", "not available offline", "needs registry " + host}},
		{name: "bad reference", ref: "Not A//Ref", wantKind: registry.ErrBadReference, wantMsg: []string{`"Not A//Ref"`}},
		{name: "bad platform", ref: host + "/models/faces:1.0", platform: "amd64", wantKind: registry.ErrBadReference},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := fastOptions()
			o.Platform, o.Offline = tt.platform, tt.offline
			img, src, err := registry.Open(context.Background(), tt.ref, o)
			if tt.wantKind != nil {
				if !errors.Is(err, tt.wantKind) {
					t.Fatalf("Open(%s) error %v, want %v", tt.ref, err, tt.wantKind)
				}
				for _, m := range tt.wantMsg {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("error %q does not mention %q", err, m)
					}
				}
				// What to type is the command line's to add, not the registry's.
				if strings.Contains(err.Error(), "scv-hpc") || strings.Contains(err.Error(), "--") {
					t.Errorf("error %q names a command or flag", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%s): %v", tt.ref, err)
			}
			if src.Digest != tt.wantDigest || digestOf(t, img) != tt.wantDigest {
				t.Errorf("digest %s (image %s), want %s", src.Digest, digestOf(t, img), tt.wantDigest)
			}
			if src.Kind != registry.KindRegistry || !strings.HasPrefix(src.Ref, host+"/models/") {
				t.Errorf("source %+v", src)
			}
			wantPlat := tt.platform
			if wantPlat == "" {
				wantPlat = "linux/amd64"
			}
			if src.Platform != wantPlat {
				t.Errorf("platform %s, want %s", src.Platform, wantPlat)
			}
		})
	}
}

func TestOpenAuthRefused(t *testing.T) {
	host := startRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v2/" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	_, _, err := registry.Open(context.Background(), host+"/private/model:1", fastOptions())
	if !errors.Is(err, registry.ErrAuth) {
		t.Fatalf("error %v, want ErrAuth", err)
	}
	for _, m := range []string{"docker login " + host, "~/.docker/config.json", host + "/private/model:1"} {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("error %q does not mention %q", err, m)
		}
	}
}

// TestOpenFlaky fails the first blob and manifest requests with 503: retries get through.
func TestOpenFlaky(t *testing.T) {
	var failures, budget atomic.Int32
	budget.Store(3)
	host := startRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && (strings.Contains(r.URL.Path, "/blobs/") || strings.Contains(r.URL.Path, "/manifests/")) && budget.Add(-1) >= 0 {
				failures.Add(1)
				http.Error(w, "try later", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	budget.Store(-1000) // let the push through
	img := platformImage(t, "linux", "amd64", 3)
	push(t, host+"/flaky/img:1", img)
	budget.Store(3)

	o := fastOptions()
	got, src, err := registry.Open(context.Background(), host+"/flaky/img:1", o)
	if err != nil {
		t.Fatalf("Open through a flaky registry: %v", err)
	}
	local, err := registry.Prefetch(context.Background(), got, t.TempDir(), o)
	if err != nil {
		t.Fatalf("Prefetch through a flaky registry: %v", err)
	}
	if src.Digest != digestOf(t, img) || digestOf(t, local) != digestOf(t, img) {
		t.Errorf("digests differ after retries")
	}
	if failures.Load() != 3 {
		t.Errorf("the registry failed %d requests, want 3 (the test did not exercise retries)", failures.Load())
	}

	// A registry that never recovers is reported as unreachable, with the status.
	budget.Store(1 << 30)
	_, _, err = registry.Open(context.Background(), host+"/flaky/img:1", o)
	if !errors.Is(err, registry.ErrUnreachable) || !strings.Contains(err.Error(), "503") {
		t.Errorf("persistent 503: %v, want ErrUnreachable naming HTTP 503", err)
	}
}

func TestOpenCanceled(t *testing.T) {
	host := startRegistry(t, nil)
	push(t, host+"/c/img:1", platformImage(t, "linux", "amd64", 1))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := registry.Open(ctx, host+"/c/img:1", fastOptions())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

// closedPort returns a 127.0.0.1 address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func mustRef(t *testing.T, ref string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
