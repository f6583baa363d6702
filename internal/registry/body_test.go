package registry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// slowWriter takes its time with every write, as a blob store on a paused shared file
// system does.
type slowWriter struct {
	buf   bytes.Buffer
	pause time.Duration
}

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(w.pause)
	return w.buf.Write(p)
}

// stalledReader returns its bytes, then blocks until closed.
type stalledReader struct {
	r      io.Reader
	closed chan struct{}
}

func (s *stalledReader) Read(p []byte) (int, error) {
	if n, err := s.r.Read(p); n > 0 || !errors.Is(err, io.EOF) {
		return n, err
	}
	<-s.closed
	return 0, errors.New("read on a closed body")
}

// TestLayerBodyStall: the stall timeout counts only the time a read waits on the
// network. A copy whose writes each take longer than the timeout is not cut; a body
// that goes silent is, with errStalled, once the timeout has passed.
func TestLayerBodyStall(t *testing.T) {
	data := bytes.Repeat([]byte("layer bytes "), 20000) // 240 KB: several reads
	l := static.NewLayer(data, types.OCILayer)
	body, err := openBody(context.Background(), l, 100*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := &slowWriter{pause: 300 * time.Millisecond}
	if _, err := io.Copy(w, body); err != nil {
		t.Fatalf("copy into a slow writer: %v", err)
	}
	body.Close()
	if !bytes.Equal(w.buf.Bytes(), data) {
		t.Fatalf("copied %d bytes, want %d", w.buf.Len(), len(data))
	}

	silent := &stalledReader{r: bytes.NewReader(data[:1000]), closed: make(chan struct{})}
	b, err := openBody(context.Background(), silentLayer{l, silent}, 100*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n, err := io.Copy(io.Discard, b)
	if !errors.Is(err, errStalled) || n != 1000 {
		t.Fatalf("copy of a silent body: %d bytes, %v; want 1000 and errStalled", n, err)
	}
	if d := time.Since(start); d < b.stall {
		t.Errorf("cut after %s, before the stall timeout %s", d, b.stall)
	}
	b.Close()
}

// silentLayer is a layer whose download is r: its bytes, then silence until closed.
type silentLayer struct {
	v1.Layer
	r *stalledReader
}

func (l silentLayer) Compressed() (io.ReadCloser, error) { return l.r, nil }

func (s *stalledReader) Close() error {
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	return nil
}
