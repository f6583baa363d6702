package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/fsutil"
	"github.com/scivision-hpc/scv-hpc/internal/version"
)

// BuildFunc writes the SIF of an image to tmpSIF (a fresh path in the cache's tmp/,
// on the same file system as the entries) and returns its metadata. Commit fills
// Digest, Created and Tool when empty, and always SIFSHA256 and Size.
type BuildFunc func(ctx context.Context, tmpSIF string) (*Meta, error)

// Commit returns the entry of digest, building it first if it is not cached.
//
// The fast path (already committed) takes no lock and writes nothing. Otherwise Commit
// takes the digest's lock (waiting while another process or node converts the same
// image, until ctx is done), checks again, calls build, hashes and checks the SIF,
// fsyncs it, renames it into place and writes the .json last. Concurrent commits of one
// digest call build once; the others get built=false and the same path. On any error
// nothing is left behind but the error, which says when the disk is full.
func (c *Cache) Commit(ctx context.Context, digest string, build BuildFunc) (sifPath string, meta *Meta, built bool, err error) {
	hex, err := ParseDigest(digest)
	if err != nil {
		return "", nil, false, fmt.Errorf("cache %s: commit: %w", c.Dir, err)
	}
	if p, m, err := c.Lookup(digest); err == nil {
		return p, m, false, nil
	}
	for _, d := range []string{c.sifDir(), c.tmpDir(), c.locksDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", nil, false, c.writeErr("creating "+d+" for "+digest, err)
		}
	}
	l, err := c.acquire(ctx, c.lockPath(hex), digest)
	if err != nil {
		return "", nil, false, err
	}
	defer l.release()
	// Another process may have committed while we waited for the lock.
	if p, m, err := c.Lookup(digest); err == nil {
		return p, m, false, nil
	}
	tmp := filepath.Join(c.tmpDir(), hex+"."+l.token+".sif")
	defer os.Remove(tmp) // a no-op once renamed into place
	m, err := build(ctx, tmp)
	if err != nil {
		if isFull(err) && !strings.Contains(err.Error(), c.Dir) {
			// Full elsewhere (the build's --tmpdir): its own error names the place.
			return "", nil, false, fmt.Errorf("cache %s: converting %s: %w", c.Dir, digest, err)
		}
		return "", nil, false, c.failErr("converting "+digest, err)
	}
	if err := ctx.Err(); err != nil {
		return "", nil, false, fmt.Errorf("cache %s: commit %s: %w", c.Dir, digest, context.Cause(ctx))
	}
	if m == nil {
		m = &Meta{}
	}
	m, err = c.finish(tmp, digest, m)
	if err != nil {
		return "", nil, false, err
	}
	p, err := c.install(tmp, hex, m)
	if err != nil {
		return "", nil, false, err
	}
	return p, m, true, nil
}

// finish checks and seals a built SIF: it must be a SIF, is hashed and fsynced, and
// its Meta gets the computed fields.
func (c *Cache) finish(tmp, digest string, m *Meta) (*Meta, error) {
	if m.Digest == "" {
		m.Digest = digest
	}
	if m.Digest != digest {
		return nil, fmt.Errorf("cache %s: commit %s: the build returned metadata of %s", c.Dir, digest, m.Digest)
	}
	f, _, err := openRegular(tmp)
	if err != nil {
		return nil, fmt.Errorf("cache %s: commit %s: the build wrote no SIF: %w", c.Dir, digest, err)
	}
	defer f.Close()
	sum, size, err := hashReader(f)
	if err != nil {
		return nil, c.failErr("hashing the SIF of "+digest, err)
	}
	if err := f.Sync(); err != nil {
		return nil, c.failErr("syncing the SIF of "+digest, err)
	}
	if err := checkSIF(tmp, size); err != nil {
		return nil, fmt.Errorf("cache %s: commit %s: the build wrote an invalid SIF: %w", c.Dir, digest, err)
	}
	m.SIFSHA256, m.Size = sum, size
	if m.Created.IsZero() {
		m.Created = time.Now().UTC().Truncate(time.Millisecond)
	}
	if m.Tool == "" {
		m.Tool = "scv-hpc " + version.String()
	}
	return m, nil
}

// install renames a sealed SIF into place and writes its .json last.
func (c *Cache) install(tmp, hex string, m *Meta) (string, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return "", fmt.Errorf("cache %s: commit %s: %w", c.Dir, m.Digest, err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return "", c.failErr("committing "+m.Digest, err)
	}
	final := c.sifPath(hex)
	if err := fsutil.CommitFile(tmp, final); err != nil {
		return "", c.failErr("committing "+m.Digest, err)
	}
	if err := fsutil.WriteFileAtomic(c.metaPath(hex), append(b, '\n'), 0o644); err != nil {
		os.Remove(final) // a SIF without metadata is not an entry: leave nothing
		return "", c.failErr("committing "+m.Digest, err)
	}
	return c.abs(final), nil
}

// failErr explains disk-full, read-only and permission failures; others keep their
// own message.
func (c *Cache) failErr(op string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) ||
		errors.Is(err, syscall.EROFS) || errors.Is(err, os.ErrPermission) {
		return c.writeErr(op, err)
	}
	return fmt.Errorf("cache %s: %s: %w", c.Dir, op, err)
}

// hashReader returns the lowercase hex sha256 of r and the bytes read.
func hashReader(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// isFull reports an out-of-space or quota error, also one a tool reported in words.
func isFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || strings.Contains(err.Error(), "no space left")
}
