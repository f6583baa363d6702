// Package cache is the content-addressed store of converted SIF images.
//
// Entries are named by the image's manifest digest and are immutable once committed:
//
//	DIR/sif/sha256/<hex>.sif     the SIF, renamed into place after fsync
//	DIR/sif/sha256/<hex>.json    its Meta, written atomically LAST (the commit marker)
//	DIR/refs/<escaped ref>       one line: the digest a tag or catalog name resolved to
//	DIR/locks/sha256-<hex>.lock  O_EXCL lock of a conversion in progress: {"host","pid","time"}
//	DIR/tmp/                     temp files of commits in progress (same file system as sif/)
//
// Reading (Lookup, ResolveRef, Refs, List, Verify) takes no lock and creates no file or
// directory, so compute nodes can use a cache mounted read-only. Writing (Commit) works
// across processes and across nodes of a shared file system (NFS, Lustre): the per-digest
// lock is an O_EXCL lock file with owner and time, not flock, and stale locks of dead
// owners are recovered.
package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/progress"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrNotCached reports that a digest or ref is not in the cache.
	ErrNotCached = errors.New("not cached")
	// ErrCorrupt reports an entry whose files disagree with its metadata.
	ErrCorrupt = errors.New("corrupt cache entry")
	// ErrInvalidDigest reports a digest that is not "sha256:" and 64 lowercase hex digits.
	ErrInvalidDigest = errors.New("invalid digest")
	// ErrInvalidRef reports a ref that cannot be stored as a refs/ file.
	ErrInvalidRef = errors.New("invalid ref")
)

// Default timings of the lock protocol; see Cache.StaleAfter and Cache.RefreshEvery.
const (
	DefaultStaleAfter   = 2 * time.Hour
	DefaultRefreshEvery = time.Minute
)

// Cache is a cache directory. The zero timing fields mean the defaults.
type Cache struct {
	// Dir is the cache root.
	Dir string
	// StaleAfter is the age after which a lock held by another host (or whose owner
	// cannot be checked) is taken to be abandoned. Default DefaultStaleAfter.
	StaleAfter time.Duration
	// RefreshEvery is how often a lock holder touches its lock file while it works, so
	// that other hosts see it alive. Default DefaultRefreshEvery.
	RefreshEvery time.Duration
	// Progress, when set, reports the bytes of long operations (Verify, Export,
	// Import, GC with Corrupt) as "verify cache", "export cache", "import bundle".
	Progress progress.Factory
}

// Open returns the cache rooted at dir. It creates nothing: directories are made by
// the first write, so opening a read-only or absent cache is fine.
func Open(dir string) *Cache {
	return &Cache{Dir: dir}
}

// Meta describes one committed entry; it is stored as the entry's .json file.
type Meta struct {
	// Digest is the image's manifest digest, "sha256:<hex>", the entry's name.
	Digest string `json:"digest"`
	// Refs are the refs (tags, catalog names) the entry was committed for. List
	// reports the refs that point at it now instead.
	Refs []string `json:"refs,omitempty"`
	// SIFSHA256 is the lowercase hex sha256 of the SIF file, filled by Commit.
	SIFSHA256 string `json:"sif_sha256"`
	// Size is the SIF's size in bytes, filled by Commit.
	Size int64 `json:"size"`
	// Created is when the entry was committed (UTC), filled by Commit.
	Created time.Time `json:"created"`
	// Tool is the scv-hpc version that converted the image.
	Tool string `json:"tool,omitempty"`
	// Platform is the image's platform, e.g. "linux/amd64".
	Platform string `json:"platform,omitempty"`
	// Source is where the image came from (registry reference, oci-layout:…, …).
	Source string `json:"source,omitempty"`
	// Config is the image's OCI config file.
	Config json.RawMessage `json:"config,omitempty"`
	// Labels are the image's labels.
	Labels map[string]string `json:"labels,omitempty"`
	// Entrypoint, Cmd and Env come from the image config.
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	Env        []string `json:"env,omitempty"`
}

// Entry is a committed entry as listed by List.
type Entry struct {
	Meta
	// Path is the absolute path of the SIF.
	Path string `json:"path"`
}

const sha256Prefix = "sha256:"

// ParseDigest checks that d is "sha256:" followed by 64 lowercase hex digits and
// returns the hex part. Digests name files, so nothing else is accepted.
func ParseDigest(d string) (hex string, err error) {
	h, ok := strings.CutPrefix(d, sha256Prefix)
	if !ok || !isHex64(h) {
		return "", fmt.Errorf("%w %q: want sha256: and 64 lowercase hex digits", ErrInvalidDigest, d)
	}
	return h, nil
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (c *Cache) sifDir() string   { return filepath.Join(c.Dir, "sif", "sha256") }
func (c *Cache) refsDir() string  { return filepath.Join(c.Dir, "refs") }
func (c *Cache) locksDir() string { return filepath.Join(c.Dir, "locks") }
func (c *Cache) tmpDir() string   { return filepath.Join(c.Dir, "tmp") }

func (c *Cache) sifPath(hex string) string  { return filepath.Join(c.sifDir(), hex+".sif") }
func (c *Cache) metaPath(hex string) string { return filepath.Join(c.sifDir(), hex+".json") }
func (c *Cache) lockPath(hex string) string {
	return filepath.Join(c.locksDir(), "sha256-"+hex+".lock")
}

// SIFPath returns where the SIF of digest is (or would be) stored, without checking it.
func (c *Cache) SIFPath(digest string) (string, error) {
	hex, err := ParseDigest(digest)
	if err != nil {
		return "", err
	}
	return c.abs(c.sifPath(hex)), nil
}

func (c *Cache) abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func (c *Cache) staleAfter() time.Duration {
	if c.StaleAfter > 0 {
		return c.StaleAfter
	}
	return DefaultStaleAfter
}

func (c *Cache) refreshEvery() time.Duration {
	if c.RefreshEvery > 0 {
		return c.RefreshEvery
	}
	return DefaultRefreshEvery
}

// Lookup returns the SIF path and metadata of a committed entry. It takes no lock and
// writes nothing. A SIF without its .json is not an entry (ErrNotCached); a .json that
// does not match its SIF's size, or cannot be read, is ErrCorrupt.
func (c *Cache) Lookup(digest string) (sifPath string, meta *Meta, err error) {
	hex, err := ParseDigest(digest)
	if err != nil {
		return "", nil, err
	}
	meta, err = c.readMeta(hex)
	if err != nil {
		return "", nil, err
	}
	p := c.sifPath(hex)
	st, err := os.Lstat(p)
	if err == nil && !st.Mode().IsRegular() {
		return "", nil, fmt.Errorf("cache %s: %w: the SIF of %s is %s, not a regular file", c.Dir, ErrCorrupt, digest, kindOf(st.Mode()))
	}
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil, fmt.Errorf("cache %s: %w: %s has metadata but no SIF", c.Dir, ErrCorrupt, digest)
	}
	if err != nil {
		return "", nil, fmt.Errorf("cache %s: %s: %w", c.Dir, digest, err)
	}
	if st.Size() != meta.Size {
		return "", nil, fmt.Errorf("cache %s: %w: %s: SIF is %d bytes, metadata says %d",
			c.Dir, ErrCorrupt, digest, st.Size(), meta.Size)
	}
	return c.abs(p), meta, nil
}

// readMeta reads and checks the .json of an entry.
func (c *Cache) readMeta(hex string) (*Meta, error) {
	digest := sha256Prefix + hex
	if err := c.ownDir(c.sifDir()); err != nil {
		return nil, err
	}
	b, err := readSmall(c.metaPath(hex), maxMetaSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cache %s: %s: %w", c.Dir, digest, ErrNotCached)
	}
	if errors.Is(err, ErrNotRegular) || errors.Is(err, ErrTooLarge) {
		return nil, fmt.Errorf("cache %s: %w: metadata of %s: %w", c.Dir, ErrCorrupt, digest, err)
	}
	if err != nil {
		return nil, fmt.Errorf("cache %s: read metadata of %s: %w", c.Dir, digest, err)
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("cache %s: %w: metadata of %s: %v", c.Dir, ErrCorrupt, digest, err)
	}
	if m.Digest != digest {
		return nil, fmt.Errorf("cache %s: %w: metadata of %s names %q", c.Dir, ErrCorrupt, digest, m.Digest)
	}
	return &m, nil
}

// List returns the committed entries, sorted by digest, each with the refs that point
// at it now (sorted) in Refs. Entries whose metadata is unreadable are left out; Verify
// reports them.
func (c *Cache) List() ([]Entry, error) {
	names, err := c.listDir(c.sifDir())
	if err != nil {
		return nil, fmt.Errorf("cache %s: list: %w", c.Dir, err)
	}
	refs, err := c.Refs()
	if err != nil {
		return nil, err
	}
	byDigest := map[string][]string{}
	for ref, d := range refs {
		byDigest[d] = append(byDigest[d], ref)
	}
	var out []Entry
	for _, n := range names {
		hex, ok := strings.CutSuffix(n, ".json")
		if !ok || !isHex64(hex) {
			continue
		}
		p, m, err := c.Lookup(sha256Prefix + hex)
		if err != nil {
			continue
		}
		m.Refs = byDigest[m.Digest]
		sort.Strings(m.Refs)
		out = append(out, Entry{Meta: *m, Path: p})
	}
	return out, nil
}

// listDir lists one of the cache's own directories (see ownDir), sorted; an absent
// directory is empty, a symlink or non-directory an error.
func (c *Cache) listDir(dir string) ([]string, error) {
	if dir == c.sifDir() {
		if err := c.ownDir(filepath.Dir(dir)); err != nil {
			return nil, err
		}
	}
	if err := c.ownDir(dir); err != nil {
		return nil, err
	}
	return readDirNames(dir)
}

// readDirNames lists a directory's names, sorted; an absent directory is empty.
func readDirNames(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names, nil
}

// WriteError is a write into the cache that failed for a reason the user can act on:
// a full disk or quota (syscall.ENOSPC, syscall.EDQUOT), a read-only file system
// (syscall.EROFS) or missing permissions (fs.ErrPermission), matched with errors.Is.
type WriteError struct {
	Dir, Op string
	Err     error
}

func (e *WriteError) Error() string {
	switch {
	case errors.Is(e.Err, syscall.ENOSPC), errors.Is(e.Err, syscall.EDQUOT):
		return fmt.Sprintf("cache %s: no space left on device while %s: %v", e.Dir, e.Op, e.Err)
	case errors.Is(e.Err, syscall.EROFS):
		return fmt.Sprintf("cache %s is read-only, cannot %s: %v", e.Dir, e.Op, e.Err)
	}
	return fmt.Sprintf("cache %s: permission denied while %s: %v", e.Dir, e.Op, e.Err)
}

// Unwrap makes errors.Is match the cause.
func (e *WriteError) Unwrap() error { return e.Err }

// writeErr wraps a failed write: a full disk, a read-only cache and missing
// permissions, the usual causes on clusters, as a *WriteError.
func (c *Cache) writeErr(op string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EROFS) ||
		errors.Is(err, fs.ErrPermission) {
		return &WriteError{Dir: c.Dir, Op: op, Err: err}
	}
	return fmt.Errorf("cache %s: %s: %w", c.Dir, op, err)
}

// reporter starts a progress report of bytes; a no-op when Progress is unset.
func (c *Cache) reporter(name string) progress.Reporter {
	if c.Progress == nil {
		return progress.Nop{}
	}
	return c.Progress(name, "bytes")
}

// countingReader adds the bytes read to a progress report.
type countingReader struct {
	r   io.Reader
	rep progress.Reporter
}

func (r countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.rep.Add(int64(n))
	return n, err
}
