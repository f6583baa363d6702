package squashfs

import (
	"bytes"
	"fmt"

	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// compressor compresses one block at a time; one per goroutine.
type compressor interface {
	// compress returns src compressed, or nil when that is not smaller than
	// src (the block is then stored as it is). The result is valid until the
	// next call.
	compress(src []byte) []byte
}

// newCompressorFunc returns the superblock id of algo and a maker of
// compressors for it at level.
func newCompressorFunc(algo string, level int) (uint16, func() compressor, error) {
	switch algo {
	case "gzip":
		if level < 1 || level > 9 {
			return 0, nil, fmt.Errorf("gzip level %d: want 1 to 9", level)
		}
		return compGzip, func() compressor { return &zlibCompressor{level: level} }, nil
	case "zstd":
		if level < 1 || level > 22 {
			return 0, nil, fmt.Errorf("zstd level %d: want 1 to 22", level)
		}
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
			zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false), zstd.WithZeroFrames(true))
		if err != nil {
			return 0, nil, err
		}
		return compZstd, func() compressor { return &zstdCompressor{enc: enc} }, nil
	default:
		return 0, nil, fmt.Errorf("compression %q: the builtin writer has gzip and zstd", algo)
	}
}

// zlibCompressor is squashfs's "gzip": zlib streams (RFC 1950), what the
// kernel's and squashfuse's zlib_inflate read.
type zlibCompressor struct {
	level int
	buf   bytes.Buffer
	w     *zlib.Writer
}

func (c *zlibCompressor) compress(src []byte) []byte {
	c.buf.Reset()
	if c.w == nil {
		c.w, _ = zlib.NewWriterLevel(&c.buf, c.level) // the level is checked above
	} else {
		c.w.Reset(&c.buf)
	}
	if _, err := c.w.Write(src); err != nil {
		return nil
	}
	if err := c.w.Close(); err != nil || c.buf.Len() >= len(src) {
		return nil
	}
	return c.buf.Bytes()
}

// zstdCompressor writes one zstd frame per block.
type zstdCompressor struct {
	enc *zstd.Encoder
	buf []byte
}

func (c *zstdCompressor) compress(src []byte) []byte {
	c.buf = c.enc.EncodeAll(src, c.buf[:0])
	if len(c.buf) >= len(src) {
		return nil
	}
	return c.buf
}
