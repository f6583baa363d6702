package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/scivision-hpc/scv-hpc/internal/fsutil"
)

// maxRefFileName keeps refs/ names, and the temp names of their atomic replacement
// (".NAME.tmp-NNNNNNNNNN"), under the 255-byte limit of most file systems.
const maxRefFileName = 200

// escapeRef turns a ref into its refs/ file name: url.PathEscape (so "/" and ":"
// survive), with a leading "." escaped too so that no ref collides with "." / ".."
// or with the hidden temp files of atomic writes.
func escapeRef(ref string) (string, error) {
	if ref == "" {
		return "", fmt.Errorf("%w: empty ref", ErrInvalidRef)
	}
	if strings.ContainsAny(ref, "\x00\n\r") {
		return "", fmt.Errorf("%w %q: control characters", ErrInvalidRef, ref)
	}
	s := url.PathEscape(ref)
	if strings.HasPrefix(s, ".") {
		s = "%2E" + s[1:]
	}
	if len(s) > maxRefFileName {
		return "", fmt.Errorf("%w %q: longer than %d bytes once escaped", ErrInvalidRef, ref, maxRefFileName)
	}
	return s, nil
}

// unescapeRef is the inverse of escapeRef; ok is false for names that are not refs
// (temp files, foreign files).
func unescapeRef(name string) (string, bool) {
	if strings.HasPrefix(name, ".") {
		return "", false
	}
	ref, err := url.PathUnescape(name)
	if err != nil {
		return "", false
	}
	if back, err := escapeRef(ref); err != nil || back != name {
		return "", false
	}
	return ref, true
}

// ErrBadRef reports a refs/ file that is not what SetRef writes: a symlink, FIFO,
// device or directory, a file larger than a digest line, or content that is not one
// digest. Its content is never echoed (it may be anything, e.g. a copy of /etc/passwd).
var ErrBadRef = errors.New("bad ref file")

// parseRefFile reads the content of a refs/ file: one digest and a newline. The error
// does not quote the content.
func parseRefFile(b []byte) (string, error) {
	d := strings.TrimSpace(string(b))
	if _, err := ParseDigest(d); err != nil {
		return "", fmt.Errorf("%w: %d bytes that are not one sha256 digest line", ErrBadRef, len(b))
	}
	return d, nil
}

// readRefFile reads and parses one refs/ file through openRegular: a symlink, FIFO or
// device is refused without being followed, opened for long or read, and so is a file
// over maxRefFile bytes. Every failure but absence is ErrBadRef.
func readRefFile(path string) (string, error) {
	b, err := readSmall(path, maxRefFile)
	if errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err != nil {
		if errors.Is(err, ErrNotRegular) || errors.Is(err, ErrTooLarge) {
			return "", fmt.Errorf("%w: %v", ErrBadRef, err)
		}
		return "", err
	}
	return parseRefFile(b)
}

// ResolveRef returns the digest a ref (tag, image reference or catalog name) was last
// resolved to, from refs/ alone: no network, no lock, no write. A ref that was never
// set is ErrNotCached. The entry itself may be gone; check it with Lookup.
func (c *Cache) ResolveRef(ref string) (digest string, err error) {
	name, err := escapeRef(ref)
	if err != nil {
		return "", err
	}
	if err := c.ownDir(c.refsDir()); err != nil {
		return "", err
	}
	d, err := readRefFile(filepath.Join(c.refsDir(), name))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("cache %s: ref %s: %w", c.Dir, ref, ErrNotCached)
	}
	if errors.Is(err, ErrBadRef) {
		return "", fmt.Errorf("cache %s: ref %s: %w: %w", c.Dir, ref, ErrCorrupt, err)
	}
	if err != nil {
		return "", fmt.Errorf("cache %s: ref %s: %w", c.Dir, ref, err)
	}
	return d, nil
}

// SetRef records that ref resolves to digest, replacing the refs/ file atomically so
// that a concurrent reader sees the old digest or the new one.
func (c *Cache) SetRef(ref, digest string) error {
	if _, err := ParseDigest(digest); err != nil {
		return fmt.Errorf("cache %s: set ref %s: %w", c.Dir, ref, err)
	}
	name, err := escapeRef(ref)
	if err != nil {
		return fmt.Errorf("cache %s: set ref: %w", c.Dir, err)
	}
	if err := os.MkdirAll(c.refsDir(), 0o755); err != nil {
		return c.writeErr("set ref "+ref, err)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(c.refsDir(), name), []byte(digest+"\n"), 0o644); err != nil {
		return c.writeErr("set ref "+ref, err)
	}
	return nil
}

// Refs returns every ref and the digest it resolves to. Unreadable and bad refs/ files
// are left out (Verify reports them, GC removes them).
func (c *Cache) Refs() (map[string]string, error) {
	names, err := c.listDir(c.refsDir())
	if err != nil {
		return nil, fmt.Errorf("cache %s: refs: %w", c.Dir, err)
	}
	out := make(map[string]string, len(names))
	for _, n := range names {
		ref, ok := unescapeRef(n)
		if !ok {
			continue
		}
		if d, err := readRefFile(filepath.Join(c.refsDir(), n)); err == nil {
			out[ref] = d
		}
	}
	return out, nil
}

// RemoveRef deletes a ref; a ref that does not exist is ErrNotCached.
func (c *Cache) RemoveRef(ref string) error {
	name, err := escapeRef(ref)
	if err != nil {
		return err
	}
	err = os.Remove(filepath.Join(c.refsDir(), name))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cache %s: ref %s: %w", c.Dir, ref, ErrNotCached)
	}
	if err != nil {
		return c.writeErr("remove ref "+ref, err)
	}
	return nil
}
