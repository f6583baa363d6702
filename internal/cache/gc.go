package cache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// StatusUnreferenced marks an entry GC removed because no ref points at it.
const StatusUnreferenced Status = "unreferenced"

// GCOptions chooses what GC removes beyond the debris of interrupted work.
type GCOptions struct {
	// AllUnreferenced also removes committed entries that no ref points at.
	AllUnreferenced bool
	// Corrupt re-hashes every SIF (as Verify does) and removes the corrupt entries.
	// Without it GC reads no SIF and removes only entries whose metadata is unreadable
	// or whose SIF has the wrong size.
	Corrupt bool
	// DryRun reports what would be removed and removes nothing.
	DryRun bool
}

// GCReport lists what GC removed (or would remove, on a dry run).
type GCReport struct {
	Removed []VerifyResult `json:"removed"`
	// Bytes is the size of the removed files.
	Bytes int64 `json:"bytes"`
	// Errors are removals that failed; GC goes on past them.
	Errors []string `json:"errors,omitempty"`
}

// GC removes temp files and orphan SIFs that no live conversion owns, stale locks,
// incomplete entries and refs to missing entries; with options, corrupt and
// unreferenced entries too, and then the refs that pointed at them (a dry run does
// not list those). An entry is only touched while GC holds its lock, so a conversion
// that starts meanwhile is never disturbed.
func (c *Cache) GC(ctx context.Context, opts GCOptions) (GCReport, error) {
	var rep GCReport
	found, err := c.scan(ctx, opts.Corrupt)
	if err != nil {
		return rep, err
	}
	if opts.AllUnreferenced {
		found = append(found, c.unreferenced(found)...)
	}
	for _, r := range found {
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("cache %s: gc: %w", c.Dir, context.Cause(ctx))
		}
		if !r.Problem() {
			continue
		}
		size := fileSize(r.Path)
		if r.Status == StatusCorrupt || r.Status == StatusUnreferenced {
			size = fileSize(c.sifPathOf(r.Digest))
		}
		if opts.DryRun {
			rep.Removed = append(rep.Removed, r)
			rep.Bytes += size
			continue
		}
		removed, err := c.gcOne(r)
		if err != nil {
			rep.Errors = append(rep.Errors, err.Error())
			continue
		}
		if removed {
			rep.Removed = append(rep.Removed, r)
			rep.Bytes += size
		}
	}
	if !opts.DryRun {
		rep.Removed = append(rep.Removed, c.removeDanglingRefs(&rep)...)
	}
	return rep, nil
}

// removeDanglingRefs removes the refs left pointing at entries GC just removed.
func (c *Cache) removeDanglingRefs(rep *GCReport) []VerifyResult {
	var out []VerifyResult
	found, err := c.verifyRefs()
	if err != nil {
		rep.Errors = append(rep.Errors, err.Error())
		return nil
	}
	for _, r := range found {
		if removed, err := c.gcOne(r); err != nil {
			rep.Errors = append(rep.Errors, err.Error())
		} else if removed {
			out = append(out, r)
		}
	}
	return out
}

// unreferenced lists the sound entries no ref points at.
func (c *Cache) unreferenced(found []VerifyResult) []VerifyResult {
	refs, err := c.Refs()
	if err != nil {
		return nil
	}
	pointed := map[string]bool{}
	for _, d := range refs {
		pointed[d] = true
	}
	var out []VerifyResult
	for _, r := range found {
		if r.Status == StatusOK && !pointed[r.Digest] {
			out = append(out, VerifyResult{Status: StatusUnreferenced, Digest: r.Digest, Path: r.Path, Detail: "no ref points at it"})
		}
	}
	return out
}

// gcOne repairs one finding; removed is false when the state changed meanwhile.
func (c *Cache) gcOne(r VerifyResult) (removed bool, err error) {
	switch r.Status {
	case StatusStaleTemp:
		if filepath.Dir(r.Path) == c.tmpDir() && tempLive(c, filepath.Base(r.Path)) {
			return false, nil
		}
		return true, removeFile(r.Path)
	case StatusStaleLock:
		age := c.staleAfter()
		isGuard := strings.HasSuffix(r.Path, ".break")
		if isGuard {
			age = guardStaleAge
		}
		raw, _, stale, err := c.lockState(r.Path, age)
		if err != nil || !stale {
			return false, nil
		}
		if isGuard {
			return removeIfSame(r.Path, raw), nil
		}
		return c.breakLock(r.Path, raw), nil
	case StatusDanglingRef, StatusBadRef:
		return c.removeRef(r.Path)
	case StatusBadFile:
		return removeNonRegular(r.Path)
	case StatusOrphan, StatusIncomplete, StatusCorrupt, StatusUnreferenced:
		return c.removeEntry(r.Digest, r.Status)
	}
	return false, nil
}

// removeRef removes a dangling or bad refs/ file. It is first renamed aside (so the
// check and the removal concern one file) and read through readRefFile (so a FIFO or
// a symlink is never opened); a ref that is sound meanwhile (re-pointed, or its entry
// committed again) is put back.
func (c *Cache) removeRef(path string) (bool, error) {
	if filepath.Dir(path) != c.refsDir() {
		return false, fmt.Errorf("cache %s: gc: %s is not in refs/", c.Dir, path)
	}
	if err := c.ownDir(c.refsDir()); err != nil {
		return false, err
	}
	aside := filepath.Join(c.refsDir(), ".gc-"+newToken())
	if err := os.Rename(path, aside); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, c.writeErr("remove ref "+filepath.Base(path), err)
	}
	if d, err := readRefFile(aside); err == nil {
		if _, err := os.Lstat(c.metaPath(strings.TrimPrefix(d, sha256Prefix))); err == nil {
			_ = os.Link(aside, path) // sound again: restore it unless a newer one appeared
			os.Remove(aside)
			return false, nil
		}
	}
	if err := os.Remove(aside); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, c.writeErr("remove ref "+filepath.Base(path), err)
	}
	return true, nil
}

// removeNonRegular removes a symlink, FIFO, device or socket found where the cache
// keeps regular files; it is never opened or followed. A directory is left alone.
func removeNonRegular(path string) (bool, error) {
	st, err := os.Lstat(path)
	if err != nil || st.Mode().IsRegular() || st.IsDir() {
		return false, nil
	}
	return true, removeFile(path)
}

// removeEntry removes an entry's files under its lock, if it is still in the state
// found by the scan.
func (c *Cache) removeEntry(digest string, was Status) (bool, error) {
	hex, err := ParseDigest(digest)
	if err != nil {
		return false, err
	}
	l, err := c.tryLock(hex)
	if err != nil {
		return false, err
	}
	if l == nil {
		return false, nil // a conversion is running: not debris
	}
	defer l.release()
	_, jerr := os.Stat(c.metaPath(hex))
	_, serr := os.Stat(c.sifPath(hex))
	switch was {
	case StatusOrphan:
		if jerr == nil || serr != nil {
			return false, nil
		}
	case StatusIncomplete:
		if jerr != nil || serr == nil {
			return false, nil
		}
	}
	// Metadata first: from then on the entry is not trusted by any reader.
	if err := removeFile(c.metaPath(hex)); err != nil {
		return false, c.writeErr("remove "+digest, err)
	}
	if err := removeFile(c.sifPath(hex)); err != nil {
		return false, c.writeErr("remove "+digest, err)
	}
	return true, nil
}

// tryLock takes the lock of hex without waiting; nil when a live owner holds it.
func (c *Cache) tryLock(hex string) (*heldLock, error) {
	path := c.lockPath(hex)
	if err := os.MkdirAll(c.locksDir(), 0o755); err != nil {
		return nil, c.writeErr("lock "+sha256Prefix+hex, err)
	}
	for range 2 {
		l, err := createLock(path)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, c.writeErr("lock "+sha256Prefix+hex, err)
		}
		raw, _, stale, err := c.lockState(path, c.staleAfter())
		if errors.Is(err, ErrNotRegular) {
			return nil, nil // a FIFO or symlink: not a lock anyone holds; GC removes it as bad-file
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("cache %s: lock %s: %w", c.Dir, sha256Prefix+hex, err)
		}
		if err == nil && (!stale || !c.breakLock(path, raw)) {
			return nil, nil
		}
	}
	return nil, nil
}

// Remove deletes an entry and the refs that point at it. An entry being converted
// right now is not removed (an error says so); an absent one is ErrNotCached.
func (c *Cache) Remove(digest string) error {
	hex, err := ParseDigest(digest)
	if err != nil {
		return fmt.Errorf("cache %s: remove: %w", c.Dir, err)
	}
	_, jerr := os.Stat(c.metaPath(hex))
	_, serr := os.Stat(c.sifPath(hex))
	refs, err := c.Refs()
	if err != nil {
		return err
	}
	var pointing []string
	for ref, d := range refs {
		if d == digest {
			pointing = append(pointing, ref)
		}
	}
	if jerr != nil && serr != nil && len(pointing) == 0 {
		return fmt.Errorf("cache %s: remove %s: %w", c.Dir, digest, ErrNotCached)
	}
	if jerr == nil || serr == nil {
		l, err := c.tryLock(hex)
		if err != nil {
			return err
		}
		if l == nil {
			return fmt.Errorf("cache %s: remove %s: a conversion of it is running; try again when it is done", c.Dir, digest)
		}
		defer l.release()
		for _, p := range []string{c.metaPath(hex), c.sifPath(hex)} {
			if err := removeFile(p); err != nil {
				return c.writeErr("remove "+digest, err)
			}
		}
	}
	for _, ref := range pointing {
		if err := c.RemoveRef(ref); err != nil && !errors.Is(err, ErrNotCached) {
			return err
		}
	}
	return nil
}

func (c *Cache) sifPathOf(digest string) string {
	hex, err := ParseDigest(digest)
	if err != nil {
		return ""
	}
	return c.sifPath(hex)
}

// removeFile removes path; an absent file is not an error.
func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func fileSize(path string) int64 {
	st, err := os.Lstat(path)
	if err != nil || !st.Mode().IsRegular() {
		return 0
	}
	return st.Size()
}
