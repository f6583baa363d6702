package cache

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/scivision-hpc/scv-hpc/internal/progress"
)

// CorruptError reports a committed entry whose SIF no longer matches what was recorded
// when it was committed (a flipped bit on disk, a truncated or replaced file). It
// matches ErrCorrupt with errors.Is. Its message says what failed; commands add what
// to do about it.
type CorruptError struct {
	// Digest is the entry's image digest; Path the SIF.
	Digest, Path string
	// Detail says what does not match.
	Detail string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("the cached SIF %s of %s is corrupt: %s", e.Path, e.Digest, e.Detail)
}

// Unwrap makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// CheckEntry re-hashes the SIF of a committed entry against the sha256 and size
// recorded when it was committed, and opens it as a SIF, as Verify does for every
// entry. It takes no lock and writes nothing (a read-only cache can be checked). A
// mismatch is a *CorruptError; an entry that is not cached wraps ErrNotCached; a
// cancelled ctx or a read error is returned as such. It reads the whole SIF: call it
// once when a job is created, not on every task of a job.
func (c *Cache) CheckEntry(ctx context.Context, digest string) error {
	hex, err := ParseDigest(digest)
	if err != nil {
		return fmt.Errorf("cache %s: check: %w", c.Dir, err)
	}
	p, m, err := c.Lookup(digest)
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return &CorruptError{Digest: digest, Path: c.abs(c.sifPath(hex)), Detail: err.Error()}
		}
		return err
	}
	rep := progress.Reporter(progress.Nop{})
	if c.Progress != nil {
		rep = c.Progress("check "+shortHex(hex), "bytes")
		rep.SetTotal(m.Size)
		defer rep.Done()
	}
	detail, err := c.sifProblem(ctx, hex, m, rep)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("cache %s: check %s: %w", c.Dir, digest, context.Cause(ctx))
		}
		return fmt.Errorf("cache %s: check %s: read the SIF: %w", c.Dir, digest, err)
	}
	if detail != "" {
		return &CorruptError{Digest: digest, Path: p, Detail: detail}
	}
	return nil
}

// CheckSIFFile is CheckEntry for a SIF known by its path only (a job records the
// path): when path is a committed SIF of a cache (DIR/sif/sha256/<hex>.sif), that
// entry is checked. Any other path wraps ErrNotCached: it has no recorded checksum.
func CheckSIFFile(ctx context.Context, path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	hex, ok := strings.CutSuffix(filepath.Base(abs), ".sif")
	shaDir := filepath.Dir(abs)
	if !ok || !isHex64(hex) || filepath.Base(shaDir) != "sha256" || filepath.Base(filepath.Dir(shaDir)) != "sif" {
		return fmt.Errorf("%s is not a SIF of a cache, so it has no recorded checksum: %w", path, ErrNotCached)
	}
	return Open(filepath.Dir(filepath.Dir(shaDir))).CheckEntry(ctx, sha256Prefix+hex)
}

// sifProblem hashes the SIF of an entry and opens it as a SIF. detail says what does
// not match m ("" when all does); err is a failure to read it (or ctx done).
func (c *Cache) sifProblem(ctx context.Context, hex string, m *Meta, rep progress.Reporter) (detail string, err error) {
	p := c.sifPath(hex)
	f, _, err := openRegular(p)
	if errors.Is(err, ErrNotRegular) {
		return err.Error(), nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	sum, size, err := hashReader(countingReader{ctxReader{ctx, f}, rep})
	switch {
	case err != nil:
		return "", err
	case size != m.Size:
		return fmt.Sprintf("SIF is %d bytes, metadata says %d", size, m.Size), nil
	case sum != m.SIFSHA256:
		return fmt.Sprintf("SIF sha256 is %s, metadata says %s", sum, m.SIFSHA256), nil
	}
	if err := checkSIF(p, size); err != nil {
		return err.Error(), nil
	}
	return "", nil
}

func shortHex(hex string) string {
	if len(hex) > 12 {
		return "sha256:" + hex[:12]
	}
	return "sha256:" + hex
}
