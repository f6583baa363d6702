package registry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/rs/zerolog"

	"github.com/scivision-hpc/scv-hpc/internal/progress"
	"github.com/scivision-hpc/scv-hpc/internal/registry"
)

func TestOpenLocalSources(t *testing.T) {
	amd := platformImage(t, "linux", "amd64", 2)
	arm := platformImage(t, "linux", "arm64", 1)
	other := platformImage(t, "linux", "amd64", 1)

	// A layout with two tagged images, and one holding a multi-platform index.
	tagged := filepath.Join(t.TempDir(), "tagged")
	p, err := layout.Write(tagged, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for tag, img := range map[string]v1.Image{"1.0": amd, "2.0": other} {
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
			t.Fatal(err)
		}
	}
	multi := filepath.Join(t.TempDir(), "multi:dir") // a ':' inside the path must survive
	mp, err := layout.Write(multi, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	if err := mp.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "latest"})); err != nil {
		t.Fatal(err)
	}

	archive := filepath.Join(t.TempDir(), "image.tar")
	if err := tarball.WriteToFile(archive, name.MustParseReference("example.org/faces:1.0"), amd); err != nil {
		t.Fatal(err)
	}
	archiveDigest := func() string {
		img, err := tarball.ImageFromPath(archive, nil)
		if err != nil {
			t.Fatal(err)
		}
		return digestOf(t, img)
	}()

	tests := []struct {
		name       string
		ref        string
		platform   string
		wantDigest string
		wantKind   error
		wantMsg    string
	}{
		{name: "layout by tag", ref: "oci-layout:" + tagged + ":1.0", wantDigest: digestOf(t, amd)},
		{name: "layout other tag", ref: "oci-layout:" + tagged + ":2.0", wantDigest: digestOf(t, other)},
		{name: "layout by digest", ref: "oci-layout:" + tagged + "@" + digestOf(t, other), wantDigest: digestOf(t, other)},
		{name: "layout ambiguous", ref: "oci-layout:" + tagged, wantKind: registry.ErrBadReference, wantMsg: "tags: 1.0, 2.0"},
		{name: "layout missing tag", ref: "oci-layout:" + tagged + ":3.0", wantKind: registry.ErrNotFound, wantMsg: "it has tags: 1.0, 2.0"},
		{name: "layout index amd64", ref: "oci-layout:" + multi + ":latest", wantDigest: digestOf(t, amd)},
		{name: "layout index arm64", ref: "oci-layout:" + multi, platform: "linux/arm64", wantDigest: digestOf(t, arm)},
		{name: "layout index no match", ref: "oci-layout:" + multi, platform: "linux/ppc64le", wantKind: registry.ErrNoPlatform, wantMsg: "available: linux/amd64, linux/arm64"},
		{name: "not a layout", ref: "oci-layout:" + t.TempDir(), wantKind: registry.ErrNotLayout, wantMsg: "no index.json"},
		{name: "docker archive", ref: "docker-archive:" + archive, wantDigest: archiveDigest},
		{name: "docker archive missing", ref: "docker-archive:" + archive + ".nope", wantKind: registry.ErrNotFound, wantMsg: archive + ".nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := fastOptions()
			o.Platform = tt.platform
			o.Offline = true // local sources never need the network
			img, src, err := registry.Open(context.Background(), tt.ref, o)
			if tt.wantKind != nil {
				if !errors.Is(err, tt.wantKind) || !strings.Contains(err.Error(), tt.wantMsg) {
					t.Fatalf("error %v, want %v mentioning %q", err, tt.wantKind, tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if src.Digest != tt.wantDigest || digestOf(t, img) != tt.wantDigest {
				t.Errorf("digest %s, want %s", src.Digest, tt.wantDigest)
			}
			if !strings.HasPrefix(src.Ref, src.Kind+":/") {
				t.Errorf("source ref %q is not %s: with an absolute path", src.Ref, src.Kind)
			}
		})
	}
}

// recorder is a progress.Reporter that keeps what it was told.
type recorder struct {
	mu                 sync.Mutex
	name, unit         string
	total, done        int64
	steps              int  // Adds above zero
	negative, afterEnd bool // an Add below zero, or after Done
	finished           bool
}

func (r *recorder) SetTotal(n int64) { r.mu.Lock(); r.total = max(r.total, n); r.mu.Unlock() }
func (r *recorder) Done()            { r.mu.Lock(); r.finished = true; r.mu.Unlock() }
func (r *recorder) Add(n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done += n
	if n > 0 {
		r.steps++
	}
	r.negative = r.negative || n < 0
	r.afterEnd = r.afterEnd || r.finished
}

// doneBytes is the sum of the Adds so far.
func (r *recorder) doneBytes() int64 { r.mu.Lock(); defer r.mu.Unlock(); return r.done }

func TestPrefetch(t *testing.T) {
	srvDone := make(chan struct{})
	host := startRegistry(t, nil)
	img := platformImage(t, "linux", "amd64", 5)
	push(t, host+"/p/img:1", img)
	close(srvDone)

	remoteImg, _, err := registry.Open(context.Background(), host+"/p/img:1", fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	o := fastOptions()
	o.Jobs = 3
	o.Progress = func(name, unit string) progress.Reporter { rec.name, rec.unit = name, unit; return rec }
	dir := t.TempDir()
	local, err := registry.Prefetch(context.Background(), remoteImg, dir, o)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, l := range layers {
		n, _ := l.Size()
		sum += n
	}
	if rec.total != sum || rec.done != sum || !rec.finished || rec.unit != "bytes" || !strings.HasPrefix(rec.name, "pull sha256:") {
		t.Errorf("progress %+v, want total=done=%d bytes, finished", rec, sum)
	}
	if digestOf(t, local) != digestOf(t, img) {
		t.Errorf("prefetched digest %s, want %s", digestOf(t, local), digestOf(t, img))
	}
	// Every layer is a local file now; its content matches the registry's.
	localLayers, err := local.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range localLayers {
		d, _ := l.Digest()
		if _, err := os.Stat(filepath.Join(dir, "sha256", d.Hex)); err != nil {
			t.Errorf("layer %d not stored: %v", i, err)
		}
		got := readAll(t, l)
		want := readAll(t, layers[i])
		if string(got) != string(want) {
			t.Errorf("layer %d content differs", i)
		}
		diffID, _ := l.DiffID()
		wantDiff, _ := layers[i].DiffID()
		if diffID != wantDiff {
			t.Errorf("layer %d diffID %s, want %s", i, diffID, wantDiff)
		}
	}
	// No partial files are left behind.
	entries, _ := os.ReadDir(filepath.Join(dir, "sha256"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".part-") {
			t.Errorf("leftover temp file %s", e.Name())
		}
	}
}

func readAll(t *testing.T, l v1.Layer) []byte {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPrefetchRetriesTruncatedLayer cuts the first download of every blob short: the
// transport sees a 200, so only Prefetch's own per-layer retry can save the pull.
func TestPrefetchRetriesTruncatedLayer(t *testing.T) {
	var cut sync.Map
	var cuts atomic.Int32
	host := startRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") && !strings.Contains(r.URL.Path, "uploads") {
				if _, done := cut.LoadOrStore(r.URL.Path, true); !done {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, r)
					body := rec.Body.Bytes()
					if len(body) > 1000 { // layers, not the config
						cuts.Add(1)
						w.Header().Set("Content-Length", fmt.Sprint(len(body)))
						w.WriteHeader(http.StatusOK)
						_, _ = w.Write(body[:len(body)/2])
						return // the server closes the connection: unexpected EOF
					}
					cut.Delete(r.URL.Path)
				}
			}
			h.ServeHTTP(w, r)
		})
	})
	img := platformImage(t, "linux", "amd64", 3)
	push(t, host+"/t/img:1", img)
	cut.Range(func(k, _ any) bool { cut.Delete(k); return true }) // the push read nothing back
	cuts.Store(0)

	o := fastOptions()
	var logs bytes.Buffer
	o.Log = zerolog.New(&logs)
	got, _, err := registry.Open(context.Background(), host+"/t/img:1", o)
	if err != nil {
		t.Fatal(err)
	}
	local, err := registry.Prefetch(context.Background(), got, t.TempDir(), o)
	if err != nil {
		t.Fatalf("Prefetch with truncated downloads: %v", err)
	}
	if cuts.Load() != 3 {
		t.Errorf("%d downloads were cut, want 3 (one per layer)", cuts.Load())
	}
	if digestOf(t, local) != digestOf(t, img) {
		t.Errorf("digest changed")
	}
	if n := strings.Count(logs.String(), "retrying"); n != 3 {
		t.Errorf("%d retry warnings logged, want 3:\n%s", n, logs.String())
	}
	ls, _ := local.Layers()
	for _, l := range ls {
		readAll(t, l) // content verifies against the diff ID on read
	}
}

func TestPrefetchCanceled(t *testing.T) {
	host := startRegistry(t, nil)
	img := platformImage(t, "linux", "amd64", 2)
	push(t, host+"/c/img:1", img)
	got, _, err := registry.Open(context.Background(), host+"/c/img:1", fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := registry.Prefetch(ctx, got, t.TempDir(), fastOptions()); !errors.Is(err, context.Canceled) {
		t.Errorf("Prefetch with a canceled context: %v, want context.Canceled", err)
	}
}

// TestPrefetchRepeatedLayer: a layer listed twice is fetched once and counted once.
func TestPrefetchRepeatedLayer(t *testing.T) {
	host := startRegistry(t, nil)
	base := platformImage(t, "linux", "amd64", 1)
	ls, err := base.Layers()
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(base, ls[0])
	if err != nil {
		t.Fatal(err)
	}
	push(t, host+"/r/img:1", img)
	got, _, err := registry.Open(context.Background(), host+"/r/img:1", fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	o := fastOptions()
	o.Name = "r/img:1"
	o.Progress = func(name, _ string) progress.Reporter { rec.name = name; return rec }
	local, err := registry.Prefetch(context.Background(), got, t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	size, _ := ls[0].Size()
	if rec.total != size || rec.done != size || rec.name != "pull r/img:1" {
		t.Errorf("progress %q %d/%d, want pull r/img:1 %d/%d", rec.name, rec.done, rec.total, size, size)
	}
	if digestOf(t, local) != digestOf(t, img) {
		t.Errorf("digest changed")
	}
}
