package registry_test

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/progress"
	"github.com/scivision-hpc/scv-hpc/internal/registry"
)

// slowPiece and slowPause are how a slow registry sends a layer: slowPiece
// bytes at a time, with a pause between pieces.
const (
	slowPiece = 256
	slowPause = 20 * time.Millisecond
)

// pace ties one layer's slow download to the test's reader of that layer, so
// that what the test asserts are orderings, never durations: before each piece
// after the first, the registry waits until the reader is inside a Read at the
// offset the registry has sent so far, that is at the end of what the download
// can have written.
type pace struct {
	mu       sync.Mutex
	moved    chan struct{} // closed and replaced whenever the reader moves
	gets     int           // GET requests for the layer
	pieces   int           // pieces of the last GET
	pos      int64         // bytes the reader has received
	reading  bool          // the reader is inside a Read at pos
	stopped  bool          // the reader has returned
	caughtUp []progressAt  // the pieces the registry held until the reader waited at its end
}

// progressAt is the progress reporter's bytes done when the reader waited at offset.
type progressAt struct{ offset, done int64 }

// snapshot copies the counts, for the test to read once the layer is read.
func (p *pace) snapshot() pace {
	p.mu.Lock()
	defer p.mu.Unlock()
	return pace{gets: p.gets, pieces: p.pieces, caughtUp: slices.Clone(p.caughtUp)}
}

func newPace() *pace { return &pace{moved: make(chan struct{})} }

// update changes the reader's state under the lock and wakes the registry.
func (p *pace) update(change func()) {
	p.mu.Lock()
	change()
	close(p.moved)
	p.moved = make(chan struct{})
	p.mu.Unlock()
}

// awaitReader blocks the registry until the reader waits at offset (counted
// in caughtUp), has stopped, or the request ends.
func (p *pace) awaitReader(ctx context.Context, offset int64, rep *recorder) {
	for {
		p.mu.Lock()
		if p.reading && p.pos == offset {
			p.caughtUp = append(p.caughtUp, progressAt{offset, rep.doneBytes()})
			p.mu.Unlock()
			return
		}
		if p.stopped {
			p.mu.Unlock()
			return
		}
		moved := p.moved
		p.mu.Unlock()
		select {
		case <-moved:
		case <-ctx.Done():
			return
		}
	}
}

// pacedReader is the test's reader of one layer; it tells the registry where it is.
type pacedReader struct {
	r io.Reader
	p *pace
}

func (r *pacedReader) Read(b []byte) (int, error) {
	r.p.update(func() { r.p.reading = true })
	n, err := r.r.Read(b)
	r.p.update(func() { r.p.reading, r.p.pos = false, r.p.pos+int64(n) })
	return n, err
}

// slowState is one case's paces (by layer digest) and progress.
type slowState struct {
	paces map[string]*pace
	rep   *recorder
}

// TestHeldSlowRegistry: a registry that is slow but alive (a layer comes
// slowPiece bytes at a time, with pauses) gives the exact layers to readers
// that follow the downloads, as a conversion reads them (PrefetchStream): each
// time a reader catches up with its download it waits for the next bytes
// instead of taking the download's current end for the layer's end. Each layer
// is downloaded once, the progress reporter counts the bytes as they arrive
// and totals the layers' sizes, and the scratch directory or the blob store
// ends holding the layers and nothing else.
func TestHeldSlowRegistry(t *testing.T) {
	img := platformImage(t, "linux", "amd64", 3)
	layers := layerDigests(t, img)
	wantCompressed, wantUncompressed := map[string][]byte{}, map[string][]byte{}
	var size int64
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range ls {
		wantCompressed[layers[i]] = readLayer(t, l.Compressed)
		wantUncompressed[layers[i]] = readLayer(t, l.Uncompressed)
		size += int64(len(wantCompressed[layers[i]]))
	}

	var state atomic.Pointer[slowState] // nil while the test pushes the image
	host := startRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := state.Load()
			if s == nil || !isLayerGET(r, layers) {
				h.ServeHTTP(w, r)
				return
			}
			p := s.paces[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]]
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			b := rec.Body.Bytes()
			p.update(func() { p.gets++; p.pieces = (len(b) + slowPiece - 1) / slowPiece })
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			w.WriteHeader(rec.Code)
			for off := 0; off < len(b); off += slowPiece {
				if off > 0 {
					p.awaitReader(r.Context(), int64(off), s.rep)
					time.Sleep(slowPause)
				}
				w.Write(b[off:min(off+slowPiece, len(b))])
				w.(http.Flusher).Flush()
			}
		})
	})
	push(t, host+"/slow/img:1", img)

	for _, tt := range []struct {
		name  string
		store bool
		want  []string // the files left, relative to the scratch directory or the cache
	}{
		{"scratch directory", false, prefixed("sha256/", layers)},
		{"blob store", true, prefixed("blobs/sha256/", layers)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &slowState{paces: map[string]*pace{}, rep: &recorder{}}
			for _, d := range layers {
				s.paces[d] = newPace()
			}
			state.Store(s)
			defer state.Store(nil)
			// Only a reader that does not follow the download makes the
			// registry wait this long (the case takes a fraction of a second).
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			o := fastOptions()
			o.Progress = func(name, unit string) progress.Reporter {
				s.rep.mu.Lock()
				defer s.rep.mu.Unlock()
				s.rep.name, s.rep.unit = name, unit
				return s.rep
			}
			dir := t.TempDir()
			root := dir
			if tt.store {
				root = filepath.Join(t.TempDir(), "cache")
				o.Blobs = cache.Open(root)
			}
			got, _, err := registry.Open(ctx, host+"/slow/img:1", o)
			if err != nil {
				t.Fatal(err)
			}
			local, wait, err := registry.PrefetchStream(ctx, got, dir, o)
			if err != nil {
				t.Fatal(err)
			}
			ll, err := local.Layers()
			if err != nil {
				t.Fatal(err)
			}
			// Every layer is read twice while it downloads: compressed, in step
			// with the registry, and uncompressed, at its own speed.
			var wg sync.WaitGroup
			compressed, uncompressed := make([][]byte, len(ll)), make([][]byte, len(ll))
			errs := make([]error, 2*len(ll))
			for i, l := range ll {
				p := s.paces[layers[i]]
				wg.Go(func() {
					defer p.update(func() { p.stopped = true })
					compressed[i], errs[2*i] = readStream(l.Compressed, func(r io.Reader) io.Reader { return &pacedReader{r: r, p: p} })
				})
				wg.Go(func() { uncompressed[i], errs[2*i+1] = readStream(l.Uncompressed, nil) })
			}
			wg.Wait()
			if err := wait(); err != nil {
				t.Errorf("wait: %v", err)
			}
			for i, d := range layers {
				if errs[2*i] != nil || errs[2*i+1] != nil {
					t.Errorf("layer %d: read compressed: %v; uncompressed: %v", i, errs[2*i], errs[2*i+1])
				}
				if !bytes.Equal(compressed[i], wantCompressed[d]) {
					t.Errorf("layer %d: read %d compressed bytes, not the layer's %d", i, len(compressed[i]), len(wantCompressed[d]))
				}
				if !bytes.Equal(uncompressed[i], wantUncompressed[d]) {
					t.Errorf("layer %d: read %d uncompressed bytes, not the layer's %d", i, len(uncompressed[i]), len(wantUncompressed[d]))
				}
				p := s.paces[d].snapshot()
				t.Logf("layer %d: %d bytes in %d pieces; the reader waited at the download's end (offset, progress): %v", i, len(compressed[i]), p.pieces, p.caughtUp)
				if p.gets != 1 {
					t.Errorf("layer %d: %d downloads, want 1", i, p.gets)
				}
				if p.pieces < 2 || len(p.caughtUp) != p.pieces-1 {
					t.Errorf("layer %d: the reader waited at the download's end before %d of the %d pieces after the first, want every one", i, len(p.caughtUp), p.pieces-1)
				}
				for _, c := range p.caughtUp {
					// The bytes the reader holds were counted before the download wrote them.
					if c.done < c.offset {
						t.Errorf("layer %d: progress %d bytes once the reader had read %d", i, c.done, c.offset)
					}
				}
			}
			rep := s.rep
			rep.mu.Lock()
			if rep.unit != "bytes" || rep.total != size || rep.done != size || !rep.finished {
				t.Errorf("progress %q in %q: %d of %d bytes, ended %v; want %d of %d, ended", rep.name, rep.unit, rep.done, rep.total, rep.finished, size, size)
			}
			if rep.steps <= len(layers) || rep.negative || rep.afterEnd {
				t.Errorf("progress in %d steps (below zero: %v, after the end: %v), want more than one a layer, none below zero or after the end", rep.steps, rep.negative, rep.afterEnd)
			}
			rep.mu.Unlock()
			if left := files(t, root); !slices.Equal(left, tt.want) {
				t.Errorf("files left in %s:\n%s\nwant:\n%s", root, strings.Join(left, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// readLayer reads the whole of open's stream.
func readLayer(t *testing.T, open func() (io.ReadCloser, error)) []byte {
	t.Helper()
	b, err := readStream(open, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readStream reads the whole of open's stream, through wrap when it is set.
func readStream(open func() (io.ReadCloser, error), wrap func(io.Reader) io.Reader) ([]byte, error) {
	rc, err := open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var r io.Reader = rc
	if wrap != nil {
		r = wrap(rc)
	}
	return io.ReadAll(r)
}

// prefixed returns each digest's hex after prefix, sorted.
func prefixed(prefix string, digests []string) []string {
	var out []string
	for _, d := range digests {
		out = append(out, prefix+strings.TrimPrefix(d, "sha256:"))
	}
	slices.Sort(out)
	return out
}

// files lists every entry under root that is not a directory, sorted.
func files(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, path)
		out = append(out, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
