// Package tarsafe holds the check that every reader of an untrusted tar stream (image
// layers, cache bundles) applies to an entry before it reads the entry's content.
package tarsafe

import (
	"archive/tar"
	"errors"
	"fmt"
	"strings"
)

// ErrSparse marks a GNU sparse file. archive/tar fills its holes with zeros, so an
// entry of a few hundred bytes may claim terabytes: reading it would run for hours and
// fill the disk. The OCI image spec says sparse files should not be used in layers, and
// no tool here writes them.
var ErrSparse = errors.New("sparse file")

// Check returns an error, naming the entry, for an entry no reader here takes: a GNU
// sparse file in any of its formats (the old GNU type 'S', and PAX 0.0, 0.1 and 1.0,
// known by their GNU.sparse.* records, whether or not archive/tar expands them).
func Check(h *tar.Header) error {
	sparse := h.Typeflag == tar.TypeGNUSparse
	for k := range h.PAXRecords {
		sparse = sparse || strings.HasPrefix(k, "GNU.sparse.")
	}
	if sparse {
		return fmt.Errorf("%s: %w (declared size %d bytes); rebuild it without sparse files (GNU tar --sparse)", Quote(h.Name), ErrSparse, h.Size)
	}
	return nil
}

// Quote quotes an entry's name for an error message, cut after 64 bytes with its length
// said: a hostile name may be a megabyte long.
func Quote(name string) string {
	if len(name) <= 64 {
		return fmt.Sprintf("%q", name)
	}
	return fmt.Sprintf("%q… (%d bytes)", name[:64], len(name))
}
