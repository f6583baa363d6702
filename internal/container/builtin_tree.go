package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/fsutil"
	"github.com/scivision-hpc/scv-hpc/internal/sif"
)

// The unpacked trees of the builtin runtime, in BuiltinOptions.Dir, one per key
// (rootfsKey), with companions:
//
//	<key>          the tree
//	<key>.lock     flock: shared while a process uses the tree (for the life of its
//	               runtime), exclusive to unpack, repair or remove it
//	<key>.json     the record (treeRecord); its mtime is the tree's last use
//	<key>.tmp-PID  a tree being unpacked by PID (or PID's private copy, -PID-N)
//	<key>.old-PID  a replaced or pruned tree PID is removing
//
// Nothing else in the directory is touched.

// DefaultMaxAge is how long an unpacked tree may stay unused before a Prepare of
// another image removes it (BuiltinOptions.MaxAge 0).
const DefaultMaxAge = 30 * 24 * time.Hour

var (
	treeName     = regexp.MustCompile(`^(?:sha256-[0-9a-f]{64}|file-[0-9a-f]{32})$`)
	treeLeftover = regexp.MustCompile(`^(?:sha256-[0-9a-f]{64}|file-[0-9a-f]{32})\.(?:tmp|old)-([0-9]+)(?:-[0-9]+)?$`)
	privateSeq   atomic.Int64
)

// treeRecord is <key>.json: what the complete tree holds, mount points included, so
// a tree damaged later (a temp cleaner, a user) is noticed by a cheap walk.
type treeRecord struct {
	Entries int64  `json:"entries"` // files, directories and links below the root
	Bytes   int64  `json:"bytes"`   // total size of the regular files
	SIF     string `json:"sif,omitempty"`
}

func (a treeRecord) same(b treeRecord) bool { return a.Entries == b.Entries && a.Bytes == b.Bytes }

// treeStats walks root without following symlinks. A directory the walk may not read
// is counted and its contents skipped, the same at unpack time and at every check.
func treeStats(root string) (treeRecord, error) {
	var s treeRecord
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p != root && d != nil && d.IsDir() && errors.Is(err, fs.ErrPermission) {
				return nil
			}
			return err
		}
		if p == root {
			return nil
		}
		s.Entries++
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			s.Bytes += fi.Size()
		}
		return nil
	})
	return s, err
}

func readRecord(path string) (*treeRecord, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rec treeRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("record %s: %w", path, err)
	}
	return &rec, nil
}

func writeRecord(path string, rec treeRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, append(b, '\n'), 0o600)
}

// treeState is what checkTree found.
type treeState struct {
	missing bool
	rec     *treeRecord // nil: no record, or a bad one (recErr)
	recErr  error
	got     treeRecord
	walkErr error
}

func (s treeState) ok() bool {
	return !s.missing && s.rec != nil && s.walkErr == nil && s.rec.same(s.got)
}

func checkTree(root string) treeState {
	if _, err := os.Lstat(root); err != nil {
		return treeState{missing: true}
	}
	var s treeState
	s.rec, s.recErr = readRecord(root + ".json")
	if errors.Is(s.recErr, fs.ErrNotExist) {
		s.recErr = nil
	}
	if s.rec != nil {
		s.got, s.walkErr = treeStats(root)
	}
	return s
}

// treeLock is a flock on <key>.lock.
type treeLock struct {
	path string
	f    *os.File
}

func openTreeLock(path string) (*treeLock, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &treeLock{path: path, f: f}, nil
}

// try takes the lock (syscall.LOCK_SH or LOCK_EX) without waiting. A lock on a file
// no longer at path (a pruner unlinks the lock file of the tree it removed, holding
// it) is dropped and path opened afresh: the caller tries again.
func (l *treeLock) try(how int) (bool, error) {
	err := syscall.Flock(int(l.f.Fd()), how|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lock %s: %w", l.path, err)
	}
	held, err1 := l.f.Stat()
	now, err2 := os.Stat(l.path)
	if err1 == nil && err2 == nil && os.SameFile(held, now) {
		return true, nil
	}
	l.f.Close()
	if l.f, err = os.OpenFile(l.path, os.O_CREATE|os.O_RDWR, 0o600); err != nil {
		return false, fmt.Errorf("lock %s: %w", l.path, err)
	}
	return false, nil
}

// lock takes the lock, waiting until ctx is done.
func (l *treeLock) lock(ctx context.Context, how int) error {
	for {
		ok, err := l.try(how)
		if ok || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lock %s: %w", l.path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (l *treeLock) unlock() { syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN) }
func (l *treeLock) close()  { l.f.Close() }

// stamp identifies the state of a tree and its record, to notice another process
// unpacking, repairing or using it.
func stamp(root string) string {
	s := ""
	for _, p := range []string{root, root + ".json"} {
		if fi, err := os.Lstat(p); err == nil {
			st, _ := fi.Sys().(*syscall.Stat_t)
			if st != nil {
				s += fmt.Sprintf("%d:%d:%d/", st.Ino, fi.ModTime().UnixNano(), fi.Size())
			}
		}
		s += "|"
	}
	return s
}

// inUseAfter is how long the tree must be seen held shared by others only (no
// unpack or repair in progress) before a damaged tree is taken to be in use.
var inUseAfter = 5 * time.Second

// acquireTree returns the root to use for sif's tree at root, holding l shared. A
// missing tree is unpacked, a damaged or unrecorded one is unpacked afresh and swapped
// in: all under the exclusive lock. A damaged tree
// that other processes are using (they hold it shared) cannot be swapped: the
// process then unpacks a private copy, <key>.tmp-PID-N, and holds nothing.
func (r *builtinRuntime) acquireTree(ctx context.Context, sif, root string, l *treeLock) (string, bool, error) {
	for {
		if err := l.lock(ctx, syscall.LOCK_SH); err != nil {
			return "", false, err
		}
		if checkTree(root).ok() {
			return root, true, nil
		}
		// Exclusive needed. The conversion is not atomic: a failed one drops the lock.
		got, err := l.try(syscall.LOCK_EX)
		if err != nil {
			return "", false, err
		}
		if !got {
			l.unlock()
			got, changed, err := r.waitExclusive(ctx, root, l)
			if err != nil {
				return "", false, err
			}
			if changed {
				continue // another process unpacked, repaired or used it: check again
			}
			if !got {
				p, err := r.privateCopy(ctx, sif, root)
				return p, false, err
			}
		}
		// Exclusive: check again (another process may have fixed it meanwhile).
		if err := r.fixTree(ctx, sif, root, checkTree(root)); err != nil {
			l.unlock()
			return "", false, err
		}
		touchTree(root)
		if err := l.lock(ctx, syscall.LOCK_SH); err != nil { // downgrade
			return "", false, err
		}
		return root, true, nil
	}
}

// waitExclusive waits for the exclusive lock. It gives up when the tree changes
// (changed: another process unpacked, repaired or used it) or when, for inUseAfter,
// only shared holders were seen: processes using it, which will not let go.
func (r *builtinRuntime) waitExclusive(ctx context.Context, root string, l *treeLock) (got, changed bool, err error) {
	before := stamp(root)
	var sharedSince time.Time
	for {
		if got, err := l.try(syscall.LOCK_EX); got || err != nil {
			return got, false, err
		}
		if stamp(root) != before {
			return false, true, nil
		}
		// Probe: a shared lock we can take means no unpack is in progress.
		sh, err := l.try(syscall.LOCK_SH)
		if err != nil {
			return false, false, err
		}
		if sh {
			l.unlock()
			if sharedSince.IsZero() {
				sharedSince = time.Now()
			} else if time.Since(sharedSince) >= inUseAfter {
				return false, false, nil
			}
		} else {
			sharedSince = time.Time{}
		}
		select {
		case <-ctx.Done():
			return false, false, fmt.Errorf("lock %s: %w", l.path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// fixTree makes the tree at root complete and recorded; the caller holds the
// exclusive lock.
func (r *builtinRuntime) fixTree(ctx context.Context, sif, root string, st treeState) error {
	if st.ok() {
		return nil
	}
	recPath := root + ".json"
	if !st.missing {
		// Mount points (an older tree, or an empty one a cleaner removed) are cheap.
		created, err := addMountPoints(root)
		if err != nil {
			return fmt.Errorf("%s: %w", root, err)
		}
		// Walk again only when something changed since checkTree's walk.
		got, err := st.got, st.walkErr
		if created && st.rec != nil {
			got, err = treeStats(root)
		}
		if err == nil && st.rec != nil && st.rec.same(got) {
			return nil
		}
		// Without a record nothing says the tree is whole (a cleaner may have taken the
		// record with files, or an older scv-hpc made it): unpack it afresh.
		ev := r.o.Log.Warn().Str("rootfs", root).Str("sif", sif)
		switch {
		case st.rec == nil && st.recErr == nil:
			ev = ev.Str("record", "missing")
		case st.recErr != nil:
			ev = ev.AnErr("record", st.recErr)
		case err != nil:
			ev = ev.AnErr("walk", err)
		default:
			ev = ev.Int64("entries_recorded", st.rec.Entries).Int64("entries_found", got.Entries).
				Int64("bytes_recorded", st.rec.Bytes).Int64("bytes_found", got.Bytes)
		}
		ev.Msg("builtin runtime: unpacked tree damaged (files removed by a temp cleaner?): unpacking it afresh")
	}
	tmp := fmt.Sprintf("%s.tmp-%d", root, os.Getpid())
	rec, err := r.unpack(ctx, sif, tmp)
	if err != nil {
		return err
	}
	// The record first: a tree in place without a record is not trusted.
	if err := writeRecord(recPath, rec); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	old := fmt.Sprintf("%s.old-%d", root, os.Getpid())
	if !st.missing {
		os.RemoveAll(old)
		if err := os.Rename(root, old); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("replace %s: %w", root, err)
		}
	}
	if err := os.Rename(tmp, root); err != nil {
		os.RemoveAll(tmp)
		if !st.missing {
			os.Rename(old, root)
		}
		return fmt.Errorf("unpack %s: %w", sif, err)
	}
	if !st.missing {
		if err := os.RemoveAll(old); err != nil {
			r.o.Log.Warn().Err(err).Str("path", old).Msg("builtin runtime: could not remove the damaged tree")
		}
	}
	return nil
}

// unpack extracts the SIF at image into dst (a <key>.tmp-PID name, so a process
// killed half-way leaves a leftover prune recognises) with the mount points, and
// returns its record.
func (r *builtinRuntime) unpack(ctx context.Context, image, dst string) (treeRecord, error) {
	start := time.Now()
	os.RemoveAll(dst)
	fail := func(err error) (treeRecord, error) {
		os.RemoveAll(dst)
		return treeRecord{}, fmt.Errorf("unpack %s: %w", image, err)
	}
	if err := sif.ExtractRootfsInto(ctx, image, dst); err != nil {
		return fail(err)
	}
	for _, d := range mountPoints {
		if err := os.MkdirAll(filepath.Join(dst, d), 0o755); err != nil {
			return fail(fmt.Errorf("mount point /%s: %w", d, err))
		}
	}
	rec, err := treeStats(dst)
	if err != nil {
		return fail(err)
	}
	rec.SIF = image
	r.o.Log.Info().Str("sif", image).Str("rootfs", dst).Int64("entries", rec.Entries).Int64("bytes", rec.Bytes).
		Dur("took", time.Since(start)).Msg("builtin runtime: image unpacked")
	return rec, nil
}

// privateCopy unpacks sif into a tree of this process alone (removed by a later
// prune once the process is gone), for a damaged tree others still use.
func (r *builtinRuntime) privateCopy(ctx context.Context, sif, root string) (string, error) {
	dst := fmt.Sprintf("%s.tmp-%d-%d", root, os.Getpid(), privateSeq.Add(1))
	r.o.Log.Warn().Str("rootfs", root).Str("copy", dst).
		Msg("builtin runtime: unpacked tree damaged and in use by other processes: unpacking a private copy for this run")
	if _, err := r.unpack(ctx, sif, dst); err != nil {
		return "", err
	}
	return dst, nil
}

// touchTree marks the tree used now (its record's mtime).
func touchTree(root string) {
	now := time.Now()
	os.Chtimes(root+".json", now, now)
}

// lockTreeDir holds a shared flock on the tree's directory, which systemd-tmpfiles
// honours: it does not age a locked directory. Best effort.
func lockTreeDir(root string) *os.File {
	d, err := os.Open(root)
	if err != nil {
		return nil
	}
	if syscall.Flock(int(d.Fd()), syscall.LOCK_SH|syscall.LOCK_NB) != nil {
		d.Close()
		return nil
	}
	return d
}

// lastUse is the newest mtime of the tree, its record and its lock file.
func lastUse(root string) time.Time {
	var t time.Time
	for _, p := range []string{root, root + ".json", root + ".lock"} {
		if fi, err := os.Lstat(p); err == nil && fi.ModTime().After(t) {
			t = fi.ModTime()
		}
	}
	return t
}

// prune removes the trees in the directory unused for longer than MaxAge that
// nobody holds (a non-blocking exclusive lock succeeds), and the .tmp-PID/.old-PID
// leftovers of processes no longer running. keep are the keys this runtime uses.
func (r *builtinRuntime) prune(keep map[string]bool) {
	maxAge := r.o.MaxAge
	if maxAge < 0 {
		return
	}
	if maxAge == 0 {
		maxAge = DefaultMaxAge
	}
	entries, err := os.ReadDir(r.o.Dir)
	if err != nil {
		return
	}
	keys := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if m := treeLeftover.FindStringSubmatch(name); m != nil {
			pid, _ := strconv.Atoi(m[1])
			if pid == os.Getpid() || fsutil.ProcessAlive(pid) {
				continue
			}
			p := filepath.Join(r.o.Dir, name)
			if err := os.RemoveAll(p); err != nil {
				r.o.Log.Warn().Err(err).Str("path", p).Msg("builtin runtime: could not remove a leftover")
				continue
			}
			r.o.Log.Info().Str("path", p).Int("pid", pid).Msg("builtin runtime: removed the leftover of a process no longer running")
			continue
		}
		key := name
		for _, ext := range []string{".lock", ".json"} {
			if k, ok := strings.CutSuffix(name, ext); ok {
				key = k
			}
		}
		if treeName.MatchString(key) && !keep[key] {
			keys[key] = true
		}
	}
	for key := range keys {
		r.pruneTree(filepath.Join(r.o.Dir, key), maxAge)
	}
}

func (r *builtinRuntime) pruneTree(root string, maxAge time.Duration) {
	if time.Since(lastUse(root)) < maxAge {
		return
	}
	if fi, err := os.Lstat(root); err == nil && !fi.IsDir() {
		return // not a tree of ours
	}
	l, err := openTreeLock(root + ".lock")
	if err != nil {
		return
	}
	defer l.close()
	if ok, err := l.try(syscall.LOCK_EX); !ok || err != nil {
		return // in use (or being unpacked)
	}
	last := lastUse(root)
	if time.Since(last) < maxAge {
		return // used just before we locked it
	}
	rec, _ := readRecord(root + ".json") // for the log only: not worth a walk of the tree
	old := fmt.Sprintf("%s.old-%d", root, os.Getpid())
	os.RemoveAll(old)
	if err := os.Rename(root, old); err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.o.Log.Warn().Err(err).Str("rootfs", root).Msg("builtin runtime: could not remove an unused tree")
		return
	}
	os.Remove(root + ".json")
	os.Remove(root + ".lock") // while holding it: waiters notice and open a new one
	if err := os.RemoveAll(old); err != nil {
		r.o.Log.Warn().Err(err).Str("rootfs", root).Msg("builtin runtime: could not remove an unused tree")
		return
	}
	ev := r.o.Log.Info().Str("rootfs", root)
	if rec != nil {
		ev = ev.Int64("bytes", rec.Bytes)
	}
	ev.Time("last_used", last).Msg("builtin runtime: removed an unused image tree")
}
