package convert

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrBadCompression is a --compression value that is not ALGO[:LEVEL] with a
// known algorithm and a level it accepts.
var ErrBadCompression = errors.New("bad compression")

// Compression is the squashfs compressor of a SIF and its level.
type Compression struct {
	// Algo is gzip, zstd, xz, lz4 or lzo.
	Algo string
	// Level is the compression level; 0 is the tool's own default for Algo.
	Level int
}

// DefaultCompression is gzip at level 3: every squashfs reader that
// Apptainer and SingularityCE use decodes gzip (kernels back to RHEL 8,
// squashfuse, SingularityCE 3.x's image check, which refuses zstd), and gzip
// decodes at the same speed whatever the level. With the builtin writer
// (klauspost/compress's deflate) level 3 packed the OpenCV image in about
// half the time of tar2sqfs at zlib level 1, for a SIF 13% larger than
// mksquashfs's level 9 (levels 1 and 2 were 7% faster and 16–19% larger;
// README: measured table). zstd packs faster and smaller where the site's
// kernels or squashfuse read it (scv-hpc doctor says which).
var DefaultCompression = Compression{Algo: "gzip", Level: 3}

// defaultLevels are the levels of an algorithm named without one: the fast
// end for gzip and zstd (the tools' own defaults, 9 and 15, pack 5–10 times
// slower for a few percent); the tools' defaults for the others.
var defaultLevels = map[string]int{"gzip": 3, "zstd": 3}

// levels gives the levels each algorithm accepts; lz4 takes none.
var levels = map[string][2]int{"gzip": {1, 9}, "zstd": {1, 22}, "xz": {0, 9}, "lzo": {1, 9}, "lz4": {0, 0}}

// ParseCompression parses ALGO[:LEVEL] ("gzip", "zstd:3", "xz"). An empty
// string is DefaultCompression; "gzip" alone is gzip:3 and "zstd" alone
// zstd:3.
func ParseCompression(s string) (Compression, error) {
	if s == "" {
		return DefaultCompression, nil
	}
	algo, lvl, hasLevel := strings.Cut(strings.ToLower(strings.TrimSpace(s)), ":")
	rng, ok := levels[algo]
	if !ok {
		return Compression{}, fmt.Errorf("%w %q: unknown algorithm %q (use gzip, zstd, xz, lz4 or lzo, optionally :LEVEL)", ErrBadCompression, s, algo)
	}
	c := Compression{Algo: algo}
	if !hasLevel {
		c.Level = defaultLevels[algo]
		return c, nil
	}
	n, err := strconv.Atoi(lvl)
	if err != nil || rng == [2]int{} || n < rng[0] || n > rng[1] {
		if rng == [2]int{} {
			return Compression{}, fmt.Errorf("%w %q: %s takes no level", ErrBadCompression, s, algo)
		}
		return Compression{}, fmt.Errorf("%w %q: %s level must be %d to %d", ErrBadCompression, s, algo, rng[0], rng[1])
	}
	c.Level = n
	return c, nil
}

// String is ALGO or ALGO:LEVEL, what ParseCompression reads.
func (c Compression) String() string {
	if c.Level == 0 {
		return c.Algo
	}
	return c.Algo + ":" + strconv.Itoa(c.Level)
}

// mksquashfsArgs are mksquashfs's -comp options for c. mksquashfs 4.5 has no
// xz level: xz:N is packed with its default preset there.
func (c Compression) mksquashfsArgs() []string {
	args := []string{"-comp", c.Algo}
	if c.Level != 0 && (c.Algo == "gzip" || c.Algo == "zstd" || c.Algo == "lzo") {
		args = append(args, "-Xcompression-level", strconv.Itoa(c.Level))
	}
	return args
}

// tar2sqfsArgs are tar2sqfs's compressor options for c.
func (c Compression) tar2sqfsArgs() []string {
	args := []string{"-c", c.Algo}
	if c.Level != 0 {
		args = append(args, "-X", "level="+strconv.Itoa(c.Level))
	}
	return args
}
