package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/lockfile"
)

// The cache's locks are lockfile locks (O_EXCL/link with owner, host, pid and time,
// refreshed while held, stale ones recovered): see package lockfile. This file adapts
// them to the cache's timings and error messages.

// lockTempPrefix starts the temp files of locks in locks/.
const lockTempPrefix = lockfile.TempPrefix

// guardStaleAge is the age after which a NAME.break guard, or a lock file that is
// not ours, counts as stale.
const guardStaleAge = lockfile.GuardStaleAge

// maxLockFile is the largest lock file ParseLock accepts.
const maxLockFile = lockfile.MaxSize

// LockInfo is the content of a lock file.
type LockInfo = lockfile.Info

// ParseLock parses a lock file's content, which may have been written by anyone who
// can write the cache: it is bounded and checked.
func ParseLock(b []byte) (LockInfo, error) { return lockfile.Parse(b) }

func thisHost() string { return lockfile.Host() }
func newToken() string { return lockfile.NewToken() }

// testHookBeforeBreak lets tests widen the window between judging a lock stale and
// breaking it, where a careless recoverer would remove someone's fresh lock.
var testHookBeforeBreak func()

// heldLock is a lock this process holds.
type heldLock struct {
	lock  *lockfile.Lock
	path  string
	token string
}

func held(l *lockfile.Lock, err error) (*heldLock, error) {
	if err != nil {
		return nil, err
	}
	return &heldLock{lock: l, path: l.Path, token: l.Token}, nil
}

// release stops the refresh and removes the lock if it is still ours.
func (h *heldLock) release() {
	h.lock.Token = h.token
	h.lock.Release()
}

func (c *Cache) lockOptions() lockfile.Options {
	return lockfile.Options{StaleAfter: c.staleAfter(), RefreshEvery: c.refreshEvery(), BeforeBreak: testHookBeforeBreak}
}

// lockState says whether the lock at path is stale. raw is the content judged.
func (c *Cache) lockState(path string, staleAge time.Duration) (raw []byte, li LockInfo, stale bool, err error) {
	return lockfile.State(path, staleAge)
}

func createLock(path string) (*heldLock, error) { return held(lockfile.Create(path)) }

func createLockExcl(path string, li LockInfo, b []byte) (*heldLock, error) {
	return held(lockfile.CreateExcl(path, li, b))
}

func removeIfSame(path string, raw []byte) bool { return lockfile.RemoveIfSame(path, raw) }

// acquire takes the lock at path, waiting while a live owner holds it and recovering
// it when stale. It returns when ctx is done. what names the lock in errors.
func (c *Cache) acquire(ctx context.Context, path, what string) (*heldLock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, c.writeErr("lock "+what, err)
	}
	l, err := lockfile.Acquire(ctx, path, c.lockOptions())
	var he *lockfile.HeldError
	switch {
	case errors.As(err, &he):
		li := he.Owner
		return nil, fmt.Errorf("cache %s: waiting for the lock of %s held by %s pid %d since %s "+
			"(another process is converting it; a lock not refreshed for %s is taken over): %w",
			c.Dir, what, li.Host, li.PID, li.Time.Format(time.RFC3339), c.staleAfter(), he.Cause)
	case errors.Is(err, lockfile.ErrNotRegular):
		// A FIFO or symlink planted at the lock path: lockfile refuses it at once.
		return nil, fmt.Errorf("cache %s: lock of %s: %w", c.Dir, what, err)
	case err != nil:
		return nil, c.writeErr("lock "+what, err)
	}
	return held(l, nil)
}

// breakLock removes the stale lock at path if it still holds raw. It reports whether
// the caller should retry at once.
func (c *Cache) breakLock(path string, raw []byte) bool {
	return lockfile.Break(path, raw, c.lockOptions())
}

// lockLive reports whether the lock of hex is held by a live owner, and its token. A
// FIFO or symlink at the lock path is no live lock (lockfile.State neither follows nor
// blocks on it).
func (c *Cache) lockLive(hex string) (token string, live bool) {
	_, li, stale, err := c.lockState(c.lockPath(hex), c.staleAfter())
	if err != nil || stale {
		return "", false
	}
	return li.Token, true
}
