package registry_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/registry"
)

// layerDigests returns the digests of img's layers, as "sha256:…".
func layerDigests(t *testing.T, img v1.Image) []string {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var ds []string
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d.String())
	}
	return ds
}

// isLayerGET reports whether r downloads one of the layers.
func isLayerGET(r *http.Request, layers []string) bool {
	if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/") {
		return false
	}
	for _, d := range layers {
		if strings.HasSuffix(r.URL.Path, d) {
			return true
		}
	}
	return false
}

// noLength is a ResponseWriter that drops the Content-Length its handler sets, so
// that the body is sent chunked and may end anywhere.
type noLength struct{ http.ResponseWriter }

func (n noLength) WriteHeader(code int) {
	n.Header().Del("Content-Length")
	n.ResponseWriter.WriteHeader(code)
}

// answerOf has h answer r, sends its header and status on w, and returns the body for
// the caller to send as it likes.
func answerOf(h http.Handler, w http.ResponseWriter, r *http.Request) []byte {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	return rec.Body.Bytes()
}

// TestHeldMisbehavingRegistries: a registry that answers HTTP 500 to every other
// request still gives the exact image; one that hangs in a layer download is left
// when the context ends; one that goes silent in a layer is cut after the stall
// timeout and tried again, while a slow one that keeps sending is not; a 404 is asked
// once and a 503 only by the request's own retries; one that serves a layer with a
// flipped byte is refused with a digest error, from its first download (another try
// would get the same bytes), into a scratch directory or a blob store. A slow one
// read as it downloads: TestHeldSlowRegistry.
func TestHeldMisbehavingRegistries(t *testing.T) {
	img := platformImage(t, "linux", "amd64", 3)
	layers := layerDigests(t, img)
	var armed atomic.Bool // off while the test pushes the image
	var served atomic.Int32
	var stop atomic.Pointer[chan struct{}] // closed when a case ends, so a hung handler lets its server close
	flipped := func(err error) bool { return err != nil && strings.Contains(err.Error(), "sha256 checksum") }
	flip := func(h http.Handler, w http.ResponseWriter, r *http.Request) {
		if !isLayerGET(r, layers[1:2]) {
			h.ServeHTTP(w, r)
			return
		}
		served.Add(1)
		b := answerOf(h, w, r)
		if len(b) > 0 {
			b[len(b)/2] ^= 0x20
		}
		w.Write(b)
	}
	answer := func(code int) func(h http.Handler, w http.ResponseWriter, r *http.Request) {
		return func(h http.Handler, w http.ResponseWriter, r *http.Request) {
			if !isLayerGET(r, layers[1:2]) {
				h.ServeHTTP(w, r)
				return
			}
			served.Add(1)
			http.Error(w, http.StatusText(code), code)
		}
	}
	// stallLayer sends the first bytes of layers[1], then nothing, on its first
	// `times` downloads (every one when times is 0); others are served.
	stallLayer := func(times int32) func(h http.Handler, w http.ResponseWriter, r *http.Request) {
		return func(h http.Handler, w http.ResponseWriter, r *http.Request) {
			if !isLayerGET(r, layers[1:2]) || (times > 0 && served.Load() >= times) {
				h.ServeHTTP(w, r)
				return
			}
			served.Add(1)
			w.Write(answerOf(h, w, r)[:100])
			w.(http.Flusher).Flush()
			select { // the connection stays open, silent
			case <-r.Context().Done():
			case <-*stop.Load():
			}
		}
	}
	stalled := func(err error) bool { return err != nil && strings.Contains(err.Error(), "no byte for 300ms") }
	tests := []struct {
		name    string
		stall   time.Duration // Options.StallTimeout
		wrap    func(h http.Handler, w http.ResponseWriter, r *http.Request)
		store   bool // into a blob store, not a scratch directory
		timeout time.Duration
		wantErr func(error) bool
		served  int32 // the misbehaving answers the pull must get, when not 0
	}{
		{name: "HTTP 500 to every other request", wrap: func(h http.Handler, w http.ResponseWriter, r *http.Request) {
			if served.Add(1)%2 == 1 {
				http.Error(w, "flaky", http.StatusInternalServerError)
				return
			}
			h.ServeHTTP(w, r)
		}},
		{name: "hangs in a layer download", timeout: 2 * time.Second, wantErr: func(err error) bool {
			return errors.Is(err, context.DeadlineExceeded)
		}, wrap: func(h http.Handler, w http.ResponseWriter, r *http.Request) {
			if !isLayerGET(r, layers) {
				h.ServeHTTP(w, r)
				return
			}
			served.Add(1)
			w.WriteHeader(http.StatusOK)
			w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
			select { // never more, until the client or the test gives up
			case <-r.Context().Done():
			case <-*stop.Load():
			}
		}},
		// A connection that goes silent in a layer is cut and tried again: a registry
		// that stalls once gives the image, one that always stalls fails after 4 tries
		// (the hang above is left only by the caller's deadline: 2 minutes by default).
		{name: "stalls once in a layer download", stall: 300 * time.Millisecond, wrap: stallLayer(1), served: 1},
		// A slow layer that is never silent for the stall timeout is read in one
		// download, though it takes longer than that timeout.
		{name: "slow, never silent for long", stall: time.Second, served: 1, wrap: func(h http.Handler, w http.ResponseWriter, r *http.Request) {
			if !isLayerGET(r, layers[1:2]) {
				h.ServeHTTP(w, r)
				return
			}
			served.Add(1)
			b := answerOf(h, w, r)
			step := len(b)/30 + 1 // 30 pieces, 50 ms apart: 1.5 s in all
			for len(b) > 0 {
				n := min(len(b), step)
				w.Write(b[:n])
				w.(http.Flusher).Flush()
				b = b[n:]
				time.Sleep(50 * time.Millisecond)
			}
		}},
		{name: "stalls in every download of a layer", stall: 300 * time.Millisecond, wrap: stallLayer(0), wantErr: stalled, served: 4},
		{name: "stalls in every download of a layer, into a blob store", stall: 300 * time.Millisecond, wrap: stallLayer(0), wantErr: stalled, served: 4, store: true},
		// A body that ends cleanly but short (no length sent, the connection closed
		// half-way) is a cut, not other content: tried again, and the image arrives.
		{name: "a layer cut short once, without a length", served: 1, wrap: func(h http.Handler, w http.ResponseWriter, r *http.Request) {
			if !isLayerGET(r, layers[1:2]) || served.Load() > 0 {
				h.ServeHTTP(w, r)
				return
			}
			served.Add(1)
			w.Header().Del("Content-Length")
			b := answerOf(h, noLength{w}, r)
			w.(http.Flusher).Flush() // headers out now: no length computed from the body
			w.Write(b[:len(b)/2])
		}},
		// A definite answer is not asked again: a 404 once, a 503 only by the request's
		// own retries (4 tries), not once more for each of them.
		{name: "HTTP 404 for a layer", wantErr: func(err error) bool { return err != nil && strings.Contains(err.Error(), "404") },
			wrap: answer(http.StatusNotFound), served: 1},
		{name: "HTTP 503 for a layer, always", wantErr: func(err error) bool { return err != nil && strings.Contains(err.Error(), "503") },
			wrap: answer(http.StatusServiceUnavailable), served: 4},
		// Other bytes than the digest's come again on another try: one download.
		{name: "a layer with a flipped byte", wantErr: flipped, wrap: flip, served: 1},
		{name: "a layer with a flipped byte, into a blob store", wantErr: flipped, wrap: flip, store: true, served: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			armed.Store(false)
			served.Store(0)
			host := startRegistry(t, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if !armed.Load() {
						h.ServeHTTP(w, r)
						return
					}
					tt.wrap(h, w, r)
				})
			})
			ch := make(chan struct{})
			stop.Store(&ch)
			t.Cleanup(func() { close(ch) })
			push(t, host+"/held/img:1", img)
			armed.Store(true)

			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			dir := t.TempDir()
			o := fastOptions()
			o.StallTimeout = tt.stall
			badDir := dir // where a downloaded layer is kept
			if tt.store {
				root := filepath.Join(t.TempDir(), "cache")
				o.Blobs = cache.Open(root)
				badDir = filepath.Join(root, "blobs")
			}
			type pulled struct {
				img v1.Image
				err error
			}
			done := make(chan pulled, 1)
			go func() { // a pull that never ends must fail the test, not hang it
				got, _, err := registry.Open(ctx, host+"/held/img:1", o)
				if err != nil {
					done <- pulled{nil, err}
					return
				}
				local, err := registry.Prefetch(ctx, got, dir, o)
				done <- pulled{local, err}
			}()
			var err error
			select {
			case p := <-done:
				if err = p.err; err == nil && digestOf(t, p.img) != digestOf(t, img) {
					t.Errorf("digest %s, want %s", digestOf(t, p.img), digestOf(t, img))
				}
			case <-time.After(tt.timeout + 20*time.Second):
				t.Fatalf("the pull did not end %s after its deadline", 20*time.Second)
			}
			if served.Load() == 0 {
				t.Fatal("the registry never misbehaved: the test exercised nothing")
			}
			if tt.served != 0 && served.Load() != tt.served {
				t.Errorf("the registry misbehaved %d times, want %d", served.Load(), tt.served)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("pull through the registry: %v", err)
				}
				return
			}
			if !tt.wantErr(err) {
				t.Fatalf("error %v, not the one expected", err)
			}
			// A layer that did not arrive whole is not left where it would be trusted.
			bad := filepath.Join(badDir, "sha256", strings.TrimPrefix(layers[1], "sha256:"))
			if _, err := os.Stat(bad); err == nil && tt.timeout == 0 {
				t.Errorf("the corrupt layer was kept as %s", bad)
			}
		})
	}
}
