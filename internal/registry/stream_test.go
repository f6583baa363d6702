package registry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/registry"
)

// TestPrefetchStream: a layer can be read while it downloads, into the
// scratch directory or into the cache's blob store, also across a retry after
// a download cut half-way; a download that fails for good, or a cancelled
// context, ends a reader that waits instead of leaving it hanging. The
// registry holds back the second half of the layer until the test has read
// from the first: the read can only succeed if it follows the download.
func TestPrefetchStream(t *testing.T) {
	img, err := random.Image(1<<20, 1)
	if err != nil {
		t.Fatal(err)
	}
	layers := layerDigests(t, img)
	ls, _ := img.Layers()
	rc, _ := ls[0].Compressed()
	want, _ := io.ReadAll(rc)
	rc.Close()

	type mode int
	const (
		hold   mode = iota // send half, wait for release, send the rest
		cut                // first try: half, then cut; later tries: as hold
		broken             // 404 for the layer
	)
	var armed atomic.Bool
	var current atomic.Int32
	var tries atomic.Int32
	var release atomic.Pointer[chan struct{}]
	host := startRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !armed.Load() || !isLayerGET(r, layers) {
				h.ServeHTTP(w, r)
				return
			}
			m := mode(current.Load())
			try := tries.Add(1)
			if m == broken {
				http.Error(w, "gone", http.StatusNotFound)
				return
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Set("Content-Length", strconv.Itoa(rec.Body.Len()))
			w.WriteHeader(rec.Code)
			b := rec.Body.Bytes()
			w.Write(b[:len(b)/2])
			w.(http.Flusher).Flush()
			if m == cut && try == 1 {
				panic(http.ErrAbortHandler) // the connection drops half-way
			}
			select {
			case <-*release.Load():
			case <-r.Context().Done():
				return
			}
			w.Write(b[len(b)/2:])
		})
	})
	push(t, host+"/stream/img:1", img)
	armed.Store(true)

	for _, tt := range []struct {
		name  string
		mode  mode
		store bool
	}{
		{"scratch directory", hold, false},
		{"blob store", hold, true},
		{"blob store, a try cut half-way", cut, true},
		{"scratch directory, a try cut half-way", cut, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			current.Store(int32(tt.mode))
			tries.Store(0)
			ch := make(chan struct{})
			release.Store(&ch)
			o := fastOptions()
			dir := t.TempDir()
			if tt.store {
				o.Blobs = cache.Open(filepath.Join(t.TempDir(), "cache"))
			}
			got, _, err := registry.Open(t.Context(), host+"/stream/img:1", o)
			if err != nil {
				t.Fatal(err)
			}
			local, wait, err := registry.PrefetchStream(t.Context(), got, dir, o)
			if err != nil {
				t.Fatal(err)
			}
			ll, _ := local.Layers()
			r, err := ll[0].Compressed()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			head := make([]byte, len(want)/4)
			read := make(chan error, 1)
			go func() { _, err := io.ReadFull(r, head); read <- err }()
			select { // the registry still holds the rest
			case err := <-read:
				if err != nil {
					t.Fatalf("read while downloading: %v", err)
				}
			case <-time.After(10 * time.Second):
				close(ch)
				t.Fatal("the layer's first bytes could not be read before its download ended")
			}
			close(ch)
			rest, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(append(head, rest...), want) {
				t.Fatalf("read %d bytes, not the layer's %d", len(head)+len(rest), len(want))
			}
			if err := wait(); err != nil {
				t.Fatal(err)
			}
			if tt.mode == cut && tries.Load() < 2 {
				t.Errorf("%d tries, want a retry", tries.Load())
			}
		})
	}

	t.Run("a download that fails ends the reader", func(t *testing.T) {
		current.Store(int32(broken))
		o := fastOptions()
		got, _, err := registry.Open(t.Context(), host+"/stream/img:1", o)
		if err != nil {
			t.Fatal(err)
		}
		local, wait, err := registry.PrefetchStream(t.Context(), got, t.TempDir(), o)
		if err != nil {
			t.Fatal(err)
		}
		ll, _ := local.Layers()
		r, _ := ll[0].Compressed()
		defer r.Close()
		if _, err := io.ReadAll(r); err == nil {
			t.Fatal("read a layer that could not be downloaded")
		}
		if err := wait(); err == nil {
			t.Fatal("wait: no error")
		}
	})

	t.Run("a cancelled context ends the reader", func(t *testing.T) {
		current.Store(int32(hold))
		ch := make(chan struct{}) // never released
		release.Store(&ch)
		defer close(ch)
		o := fastOptions()
		got, _, err := registry.Open(t.Context(), host+"/stream/img:1", o)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		local, wait, err := registry.PrefetchStream(ctx, got, t.TempDir(), o)
		if err != nil {
			t.Fatal(err)
		}
		ll, _ := local.Layers()
		r, _ := ll[0].Compressed()
		defer r.Close()
		go func() { time.Sleep(100 * time.Millisecond); cancel() }()
		if _, err := io.ReadAll(r); !errors.Is(err, context.Canceled) {
			t.Fatalf("read after cancel: %v, want context.Canceled", err)
		}
		if err := wait(); !errors.Is(err, context.Canceled) {
			t.Fatalf("wait: %v", err)
		}
	})
}
