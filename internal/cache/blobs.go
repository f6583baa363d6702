package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/fsutil"
)

// The layer blob store, shared by every model of the cache:
//
//	CACHE/blobs/sha256/<hex>   a compressed layer, named by its digest, immutable
//
// A blob is written like a SIF: under the lock of its digest (the lock files
// and their rules are those of Commit), into tmp/<hex>.<token>.sif.blob,
// checked against its digest and size, fsynced and renamed into place, so a
// blob under its name is always whole. A blob's modification time is when a
// conversion last used it: GCBlobs removes the ones no conversion used for
// BlobMaxAge.

// DefaultBlobMaxAge is how long GCBlobs keeps a layer blob that no conversion
// used: 7 days.
const DefaultBlobMaxAge = 7 * 24 * time.Hour

// ErrBlobDigest is a downloaded blob that does not match its digest or size.
var ErrBlobDigest = errors.New("blob does not match its digest")

func (c *Cache) blobDir() string { return filepath.Join(c.Dir, "blobs", "sha256") }

// BlobPath returns where the blob of digest ("sha256:<hex>") is or would be.
func (c *Cache) BlobPath(digest string) (string, error) {
	hex, err := ParseDigest(digest)
	if err != nil {
		return "", fmt.Errorf("cache %s: blob: %w", c.Dir, err)
	}
	return c.abs(filepath.Join(c.blobDir(), hex)), nil
}

// Blob returns the path of the blob of digest, of size bytes, calling fetch to
// download it into a writer when the cache does not hold it yet. Concurrent
// calls for one digest, from any process or node, download it once. A blob
// found (or made) is marked used now; on a read-only cache that mark is
// skipped. fetch may be called again by the caller's retries: each call gets
// a fresh writer.
func (c *Cache) Blob(ctx context.Context, digest string, size int64, fetch func(w io.Writer) error) (path string, fetched bool, err error) {
	hex, err := ParseDigest(digest)
	if err != nil {
		return "", false, fmt.Errorf("cache %s: blob: %w", c.Dir, err)
	}
	final := filepath.Join(c.blobDir(), hex)
	if st, err := os.Stat(final); err == nil && st.Size() == size {
		touch(final)
		return c.abs(final), false, nil
	}
	for _, d := range []string{c.blobDir(), c.tmpDir(), c.locksDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", false, c.writeErr("creating "+d+" for blob "+digest, err)
		}
	}
	l, err := c.acquire(ctx, c.lockPath(hex), digest)
	if err != nil {
		return "", false, err
	}
	defer l.release()
	if st, err := os.Stat(final); err == nil && st.Size() == size {
		touch(final)
		return c.abs(final), false, nil
	}
	tmp := filepath.Join(c.tmpDir(), hex+"."+l.token+".sif.blob")
	defer os.Remove(tmp) // a no-op once renamed
	if err := c.writeBlob(tmp, hex, size, fetch); err != nil {
		return "", false, err
	}
	if err := fsutil.CommitFile(tmp, final); err != nil {
		return "", false, c.failErr("committing blob "+digest, err)
	}
	return c.abs(final), true, nil
}

func (c *Cache) writeBlob(tmp, want string, size int64, fetch func(io.Writer) error) error {
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return c.failErr("writing blob sha256:"+want, err)
	}
	defer f.Close()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h), name: tmp}
	if err := fetch(cw); err != nil {
		if isDiskErr(err) {
			return c.failErr("writing blob sha256:"+want, err)
		}
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want || cw.n != size {
		return fmt.Errorf("%w: got sha256:%s (%d bytes), want sha256:%s (%d bytes)", ErrBlobDigest, got, cw.n, want, size)
	}
	if err := f.Sync(); err != nil {
		return c.failErr("syncing blob sha256:"+want, err)
	}
	if err := f.Close(); err != nil {
		return c.failErr("writing blob sha256:"+want, err)
	}
	return nil
}

// isDiskErr reports a write error that is the cache's (full, read-only, denied).
func isDiskErr(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && pe.Op == "write"
}

type countWriter struct {
	w    io.Writer
	n    int64
	name string // the file written, for readers that follow the download
}

// Name is the file the blob is being written to: a reader may read it as
// it grows (registry.PrefetchStream does), and must check the digest itself.
func (c *countWriter) Name() string { return c.name }

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// touch marks a blob used now; a read-only cache keeps the old mark.
func touch(p string) {
	now := time.Now()
	_ = os.Chtimes(p, now, now)
}

// BlobInfo is one layer blob of the cache.
type BlobInfo struct {
	Digest string    `json:"digest"`
	Size   int64     `json:"size"`
	Used   time.Time `json:"used"` // last used by a conversion
}

// Blobs lists the layer blobs, by digest. It writes nothing.
func (c *Cache) Blobs() ([]BlobInfo, error) {
	names, err := readDirNames(c.blobDir())
	if err != nil {
		return nil, fmt.Errorf("cache %s: list blobs: %w", c.Dir, err)
	}
	var out []BlobInfo
	for _, n := range names {
		if !isHex64(n) {
			continue
		}
		st, err := os.Lstat(filepath.Join(c.blobDir(), n))
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		out = append(out, BlobInfo{Digest: sha256Prefix + n, Size: st.Size(), Used: st.ModTime()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Digest < out[j].Digest })
	return out, nil
}

// GCBlobs removes the layer blobs that no conversion used for maxAge (0:
// DefaultBlobMaxAge; negative: every blob), each under its digest's lock (a
// blob being written or read by a pull in progress is kept), and returns
// what it removed (dryRun: would remove).
func (c *Cache) GCBlobs(maxAge time.Duration, dryRun bool) ([]BlobInfo, error) {
	if maxAge == 0 {
		maxAge = DefaultBlobMaxAge
	}
	blobs, err := c.Blobs()
	if err != nil {
		return nil, err
	}
	var removed []BlobInfo
	for _, b := range blobs {
		if maxAge > 0 && time.Since(b.Used) < maxAge {
			continue
		}
		if dryRun {
			removed = append(removed, b)
			continue
		}
		hex := strings.TrimPrefix(b.Digest, sha256Prefix)
		l, err := c.tryLock(hex)
		if err != nil || l == nil {
			continue // in use
		}
		err = os.Remove(filepath.Join(c.blobDir(), hex))
		l.release()
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, c.failErr("removing blob "+b.Digest, err)
		}
		removed = append(removed, b)
	}
	return removed, nil
}
