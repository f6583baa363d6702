package cache

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/fsutil"
)

// Lock files work on NFS and Lustre, where flock may be absent or node-local. A lock is
// created by writing its full content to a unique temp file in locks/ and hard-linking
// it to the lock name: link(2) fails with EEXIST atomically, like O_EXCL, and the lock
// is never seen half-written. The holder touches it every RefreshEvery; it is stale
// when its owner is a dead process on this host, or when it was not touched for
// StaleAfter (owners on other hosts, or a pid reused). Breaking a stale lock is itself
// serialised by a short-lived guard lock (".break"), and the stale file is renamed to a
// unique name and compared with what was judged stale before it is deleted, so two
// recoverers never remove each other's fresh lock.

const (
	maxLockFile    = 4096
	guardStaleAge  = 30 * time.Second
	pollMin        = 20 * time.Millisecond
	pollMax        = 2 * time.Second
	lockTempPrefix = ".lock-"
)

// LockInfo is the content of a lock file.
type LockInfo struct {
	Host  string    `json:"host"`
	PID   int       `json:"pid"`
	Time  time.Time `json:"time"`
	Token string    `json:"token,omitempty"`
}

// ParseLock parses a lock file's content, which may have been written by anyone who
// can write the cache: it is bounded and checked.
func ParseLock(b []byte) (LockInfo, error) {
	var li LockInfo
	if len(b) > maxLockFile {
		return li, fmt.Errorf("lock file of %d bytes: larger than %d", len(b), maxLockFile)
	}
	if err := json.Unmarshal(b, &li); err != nil {
		return li, fmt.Errorf("lock file: %w", err)
	}
	if li.Host == "" || li.PID <= 0 {
		return li, fmt.Errorf("lock file: missing host or pid")
	}
	return li, nil
}

var (
	hostOnce sync.Once
	hostName string
)

func thisHost() string {
	hostOnce.Do(func() {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "unknown-host"
		}
		hostName = h
	})
	return hostName
}

func newToken() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b[:])
}

// testHookBeforeBreak lets tests widen the window between judging a lock stale and
// breaking it, where a careless recoverer would remove someone's fresh lock.
var testHookBeforeBreak func()

// lockState says whether the lock at path is stale. raw is the content judged.
func (c *Cache) lockState(path string, staleAge time.Duration) (raw []byte, li LockInfo, stale bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, li, false, err
	}
	defer f.Close()
	st, err := f.Stat() // the age and the content of one and the same file
	if err != nil {
		return nil, li, false, err
	}
	raw, err = io.ReadAll(io.LimitReader(f, maxLockFile+1))
	if err != nil {
		return nil, li, false, err
	}
	age := time.Since(st.ModTime())
	li, perr := ParseLock(raw)
	switch {
	case perr != nil:
		// Not written by us (ours are complete before they appear): judge by age.
		stale = age > guardStaleAge
	case li.Host == thisHost() && li.PID != os.Getpid() && !fsutil.ProcessAlive(li.PID):
		stale = true
	default:
		stale = age > staleAge
	}
	return raw, li, stale, nil
}

// heldLock is a lock this process holds.
type heldLock struct {
	path  string
	token string
	stop  chan struct{}
	done  chan struct{}
}

// createLock makes path atomically with a complete LockInfo, failing with fs.ErrExist
// when someone holds it.
func createLock(path string) (*heldLock, error) {
	li := LockInfo{Host: thisHost(), PID: os.Getpid(), Time: time.Now().UTC(), Token: newToken()}
	b, _ := json.Marshal(li)
	tmp := filepath.Join(filepath.Dir(path), lockTempPrefix+li.Token)
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		// NFS may lose the reply of a link that succeeded: the link count tells.
		st, serr := os.Stat(tmp)
		switch {
		case serr == nil && nlink(st) == 2:
		case errors.Is(err, fs.ErrExist):
			return nil, err
		case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.ENOTSUP), errors.Is(err, syscall.EMLINK):
			// No hard links here: plain O_EXCL (readers wait while it looks empty).
			return createLockExcl(path, li, b)
		default:
			return nil, err
		}
	}
	return &heldLock{path: path, token: li.Token}, nil
}

// createLockExcl is createLock for file systems without hard links.
func createLockExcl(path string, li LockInfo, b []byte) (*heldLock, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	_, werr := f.Write(append(b, '\n'))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(path)
		return nil, werr
	}
	return &heldLock{path: path, token: li.Token}, nil
}

func nlink(st fs.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(s.Nlink)
	}
	return 0
}

// acquire takes the lock at path, waiting with backoff while a live owner holds it and
// recovering it when stale. It returns when ctx is done. what names the lock in errors.
func (c *Cache) acquire(ctx context.Context, path, what string) (*heldLock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, c.writeErr("lock "+what, err)
	}
	wait := pollMin
	for {
		l, err := createLock(path)
		if err == nil {
			c.startRefresh(l)
			return l, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, c.writeErr("lock "+what, err)
		}
		raw, li, stale, err := c.lockState(path, c.staleAfter())
		if errors.Is(err, fs.ErrNotExist) {
			continue // released meanwhile: try again at once
		}
		if err != nil {
			return nil, fmt.Errorf("cache %s: lock %s: %w", c.Dir, what, err)
		}
		if stale && c.breakLock(path, raw) {
			continue
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cache %s: waiting for the lock of %s held by %s pid %d since %s "+
				"(another process is converting it; a lock not refreshed for %s is taken over): %w",
				c.Dir, what, li.Host, li.PID, li.Time.Format(time.RFC3339), c.staleAfter(), context.Cause(ctx))
		case <-time.After(wait + mrand.N(wait/2+1)):
		}
		wait = min(wait*2, pollMax)
	}
}

// breakLock removes the stale lock at path if it still holds raw. It reports whether
// the caller should retry at once.
func (c *Cache) breakLock(path string, raw []byte) bool {
	if testHookBeforeBreak != nil {
		testHookBeforeBreak()
	}
	guard := path + ".break"
	g, err := createLock(guard)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			// A recoverer that died holding the guard must not block everyone.
			if graw, _, gstale, err := c.lockState(guard, guardStaleAge); err == nil && gstale {
				removeIfSame(guard, graw)
			}
		}
		return false
	}
	defer g.release()
	return removeIfSame(path, raw)
}

// removeIfSame renames path to a unique name and deletes it if its content is raw (or
// raw is nil); a file that changed meanwhile is put back. The rename makes the check
// and the removal refer to the same file.
func removeIfSame(path string, raw []byte) bool {
	aside := filepath.Join(filepath.Dir(path), lockTempPrefix+"stale-"+newToken())
	if err := os.Rename(path, aside); err != nil {
		return errors.Is(err, fs.ErrNotExist)
	}
	got, err := os.ReadFile(aside)
	if err == nil && raw != nil && !bytes.Equal(got, raw) {
		// Someone's fresh lock: restore it unless another appeared meanwhile.
		_ = os.Link(aside, path)
		os.Remove(aside)
		return false
	}
	os.Remove(aside)
	return true
}

// startRefresh touches the lock every RefreshEvery until release, so other hosts see
// the owner alive however long the conversion takes.
func (c *Cache) startRefresh(l *heldLock) {
	l.stop = make(chan struct{})
	l.done = make(chan struct{})
	every := c.refreshEvery()
	go func() {
		defer close(l.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
				now := time.Now()
				_ = os.Chtimes(l.path, now, now)
			}
		}
	}()
}

// release stops the refresh and removes the lock if it is still ours.
func (l *heldLock) release() {
	if l.stop != nil {
		close(l.stop)
		<-l.done
	}
	b, err := os.ReadFile(l.path)
	if err != nil {
		return
	}
	if li, err := ParseLock(b); err == nil && li.Token == l.token {
		os.Remove(l.path)
	}
}

// lockLive reports whether the lock of hex is held by a live owner, and its token.
func (c *Cache) lockLive(hex string) (token string, live bool) {
	_, li, stale, err := c.lockState(c.lockPath(hex), c.staleAfter())
	if err != nil || stale {
		return "", false
	}
	return li.Token, true
}
