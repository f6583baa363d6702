package convert

import (
	"io"
	"os"

	"github.com/klauspost/compress/s2"
)

// A spool keeps a layer's decompressed tar, recompressed with S2, in an
// unlinked temporary file while pass 1 reads it, so that pass 2 reads it back
// at several GB/s instead of inflating the gzip layer a second time: the S2
// encoder runs on the core that gzip decoding leaves idle. The file has no
// name, so nothing of it outlives the process, however it ends. Any failure
// to write it (a full disk) only drops the spool: pass 2 then reads the layer.
type spool struct {
	f   *os.File
	w   *s2.Writer
	bad bool
}

// newSpool starts a spool in dir; nil when dir is "" or no file can be made.
func newSpool(dir string) *spool {
	if dir == "" {
		return nil
	}
	f, err := os.CreateTemp(dir, ".scv-hpc-spool-")
	if err != nil {
		return nil
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil
	}
	return &spool{f: f, w: s2.NewWriter(f)}
}

// Write never fails: a spool that cannot be written is dropped.
func (s *spool) Write(p []byte) (int, error) {
	if s.bad {
		return len(p), nil
	}
	if _, err := s.w.Write(p); err != nil {
		s.bad = true
	}
	return len(p), nil
}

// finish flushes the spool; false when it is unusable (then it is closed).
func (s *spool) finish() bool {
	if !s.bad {
		if err := s.w.Close(); err != nil {
			s.bad = true
		}
	}
	if s.bad {
		s.f.Close()
	}
	return !s.bad
}

// reader reads the spooled tar from its start.
func (s *spool) reader() (io.ReadCloser, error) {
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return io.NopCloser(s2.NewReader(s.f)), nil
}

func (s *spool) close() {
	if s != nil && !s.bad {
		s.f.Close()
	}
}
