package fetch

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// blobCounter is go-containerregistry's in-process registry that counts the
// layer blobs it serves.
type blobCounter struct {
	mu  sync.Mutex
	got map[string]int // blob digest → GETs
}

func (b *blobCounter) start(t *testing.T) string {
	reg := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if i := strings.Index(r.URL.Path, "/blobs/sha256:"); i >= 0 && r.Method == http.MethodGet {
			b.mu.Lock()
			b.got[r.URL.Path[i+len("/blobs/"):]]++
			b.mu.Unlock()
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func (b *blobCounter) reset() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	got := b.got
	b.got = map[string]int{}
	return got
}

// TestLayerCacheShared pulls two models built on the same base layers (the
// demo layer and a random one): with the
// layer cache the second downloads only its own layer; without it, the base
// again.
func TestLayerCacheShared(t *testing.T) {
	base, err := random.Layer(200_000, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	baseDigest, _ := base.Digest()
	for _, tt := range []struct {
		name         string
		noLayerCache bool
		wantBase     int // GETs of the base layer by the second pull
	}{
		{"layer cache", false, 0},
		{"no layer cache", true, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			counter := &blobCounter{got: map[string]int{}}
			host := counter.start(t)
			images := map[string]v1.Layer{}
			for _, name := range []string{"a", "b"} {
				own, err := random.Layer(50_000, types.DockerLayer)
				if err != nil {
					t.Fatal(err)
				}
				img, err := mutate.AppendLayers(testImage(t, "amd64", demoFiles, nil, "/usr/local/bin/demo"), base, own)
				if err != nil {
					t.Fatal(err)
				}
				testenv.Push(t, img, host+"/lab/"+name+":1")
				images[name] = own
			}
			o := newOptions(t, "", nil)
			o.NoLayerCache = tt.noLayerCache
			if _, err := Ensure(ctx(t), host+"/lab/a:1", o); err != nil {
				t.Fatal(err)
			}
			counter.reset()
			if _, err := Ensure(ctx(t), host+"/lab/b:1", o); err != nil {
				t.Fatal(err)
			}
			got := counter.reset()
			own, _ := images["b"].Digest()
			if got[own.String()] != 1 {
				t.Errorf("second pull fetched its own layer %d times, want 1 (%v)", got[own.String()], got)
			}
			if got[baseDigest.String()] != tt.wantBase {
				t.Errorf("second pull fetched the shared base layer %d times, want %d", got[baseDigest.String()], tt.wantBase)
			}
			blobs, err := o.Cache.Blobs()
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int{false: 4, true: 0}[tt.noLayerCache]; len(blobs) != want {
				t.Errorf("cache holds %d blobs, want %d: %+v", len(blobs), want, blobs)
			}
		})
	}
}
