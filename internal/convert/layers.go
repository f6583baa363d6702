package convert

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// errLayerDigest is a layer whose bytes do not hash to its digest.
var errLayerDigest = errors.New("layer content does not match its digest")

// openLayer returns the uncompressed tar stream of l. The compressed bytes are
// checked against the layer's digest as they are read: the error comes at
// EOF, so a caller reads to the end. gzip and zstd are decoded with
// klauspost/compress (gzip about twice as fast as compress/gzip here); other
// content is read as a plain tar.
func openLayer(l v1.Layer) (io.ReadCloser, error) {
	d, err := l.Digest()
	if err != nil {
		return nil, fmt.Errorf("layer digest: %w", err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	var src io.Reader = rc
	if d.Algorithm == "sha256" {
		src = &digestReader{r: rc, h: sha256.New(), want: d.Hex}
	}
	br := bufio.NewReaderSize(src, 1<<20)
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			rc.Close()
			return nil, fmt.Errorf("gzip: %w", err)
		}
		zr.Multistream(true)
		return &layerReader{Reader: zr, closers: []func() error{zr.Close, rc.Close}, rest: br}, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			rc.Close()
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return &layerReader{Reader: zr, closers: []func() error{func() error { zr.Close(); return nil }, rc.Close}, rest: br}, nil
	default:
		return &layerReader{Reader: br, closers: []func() error{rc.Close}, rest: br}, nil
	}
}

// layerReader reads a decompressed layer; at EOF it drains what follows the
// compressed stream, so the digest is checked over every byte of the blob.
type layerReader struct {
	io.Reader
	rest    io.Reader
	closers []func() error
}

func (l *layerReader) Read(p []byte) (int, error) {
	n, err := l.Reader.Read(p)
	if errors.Is(err, io.EOF) {
		if _, derr := io.Copy(io.Discard, l.rest); derr != nil {
			return n, derr
		}
	}
	return n, err
}

func (l *layerReader) Close() error {
	var first error
	for _, c := range l.closers {
		if err := c(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// digestReader fails at EOF when the bytes read do not hash to want.
type digestReader struct {
	r io.Reader
	h interface {
		Sum([]byte) []byte
		Write([]byte) (int, error)
	}
	want string
}

func (d *digestReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		if got := hex.EncodeToString(d.h.Sum(nil)); got != d.want {
			return n, fmt.Errorf("%w: got sha256:%s, want sha256:%s", errLayerDigest, got, d.want)
		}
	}
	return n, err
}

// readAhead decompresses r in its own goroutine, at most depth chunks of
// chunk bytes ahead of the reader: the next layer decompresses while this
// one is merged or written, with memory bounded to depth*chunk.
func readAhead(r io.ReadCloser, chunk, depth int) io.ReadCloser {
	ra := &aheadReader{ch: make(chan []byte, depth), free: make(chan []byte, depth+1),
		stop: make(chan struct{}), done: make(chan struct{}), src: r}
	go ra.fill(chunk)
	return ra
}

type aheadReader struct {
	ch   chan []byte
	free chan []byte // chunks read out, to fill again
	full []byte      // the chunk cur is part of
	stop chan struct{}
	done chan struct{}
	src  io.ReadCloser
	err  error // set before ch is closed
	cur  []byte
}

func (a *aheadReader) fill(chunk int) {
	defer close(a.done)
	defer close(a.ch)
	for {
		var buf []byte
		select {
		case buf = <-a.free:
		default:
			buf = make([]byte, chunk)
		}
		n, err := io.ReadFull(a.src, buf[:chunk])
		if n > 0 {
			select {
			case a.ch <- buf[:n]:
			case <-a.stop:
				return
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return
		}
		if err != nil {
			a.err = err
			return
		}
	}
}

func (a *aheadReader) Read(p []byte) (int, error) {
	for len(a.cur) == 0 {
		if a.full != nil {
			select {
			case a.free <- a.full[:cap(a.full)]:
			default:
			}
			a.full = nil
		}
		b, ok := <-a.ch
		if !ok {
			if a.err != nil {
				return 0, a.err
			}
			return 0, io.EOF
		}
		a.cur, a.full = b, b
	}
	n := copy(p, a.cur)
	a.cur = a.cur[n:]
	return n, nil
}

// Close stops the decompression and closes the layer.
func (a *aheadReader) Close() error {
	close(a.stop)
	<-a.done
	return a.src.Close()
}
