// Package lockfile is a lock file that works across the nodes of a cluster, on NFS and
// Lustre where flock may be absent or node-local.
//
// A lock is created by writing its full content ({"host","pid","time","token"}) to a
// unique temp file beside it and hard-linking that to the lock name: link(2) fails with
// EEXIST atomically, like O_EXCL, and a lock is never seen half-written. Without hard
// links, O_CREAT|O_EXCL is used. The holder touches the file every RefreshEvery (default
// 1 min); a lock is stale when its owner is a dead process on this host, or when it was
// not touched for StaleAfter (default 2 h: owners on other hosts, or a reused pid).
// Breaking a stale lock is serialised by a short-lived guard lock (NAME.break), and the
// stale file is renamed to a unique name and compared with what was judged stale before
// it is deleted, so two recoverers never remove each other's fresh lock.
package lockfile

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

// Default timings; see Options.
const (
	DefaultStaleAfter   = 2 * time.Hour
	DefaultRefreshEvery = time.Minute
)

const (
	pollMin = 20 * time.Millisecond
	pollMax = 2 * time.Second
	// TempPrefix starts the names of the temp files a lock is made from, and of stale
	// locks being removed, in the lock's directory.
	TempPrefix = ".lock-"
	// MaxSize is the largest lock file Parse accepts.
	MaxSize = 4096
	// GuardStaleAge is the age after which a break guard (NAME.break), or a lock file
	// whose content is not a lock, counts as stale.
	GuardStaleAge = 30 * time.Second
)

// ErrNotRegular: what sits at a lock's path is a symlink, FIFO, device, socket or
// directory, not a lock file. It is never followed nor read (a FIFO would block the
// reader forever, a symlink lead it elsewhere); Acquire and TryAcquire fail at once.
var ErrNotRegular = errors.New("not a regular file")

// ErrHeld is returned by TryAcquire when a live owner holds the lock (as *HeldError).
var ErrHeld = errors.New("lock held")

// HeldError says who holds a lock: returned by TryAcquire, and by Acquire when its
// context ends while it waits.
type HeldError struct {
	Path  string
	Owner Info
	Cause error // nil, or why Acquire stopped waiting
}

func (e *HeldError) Error() string {
	s := fmt.Sprintf("%s is held by %s pid %d since %s", e.Path, e.Owner.Host, e.Owner.PID, e.Owner.Time.Local().Format(time.RFC3339))
	if e.Cause != nil {
		s = "waiting: " + s + ": " + e.Cause.Error()
	}
	return s
}

func (e *HeldError) Is(target error) bool { return target == ErrHeld }
func (e *HeldError) Unwrap() error        { return e.Cause }

// Info is the content of a lock file.
type Info struct {
	Host  string    `json:"host"`
	PID   int       `json:"pid"`
	Time  time.Time `json:"time"`
	Token string    `json:"token,omitempty"`
}

// Options are the timings of the protocol; zero values take the defaults.
type Options struct {
	// StaleAfter is the age after which a lock not touched by its owner is taken over
	// (default 2 h). Keep it well above RefreshEvery.
	StaleAfter time.Duration
	// RefreshEvery is how often a holder touches its lock (default 1 min).
	RefreshEvery time.Duration
	// BeforeBreak, when set, runs between judging a lock stale and breaking it (tests
	// widen that window with it).
	BeforeBreak func()
}

func (o Options) staleAfter() time.Duration {
	if o.StaleAfter > 0 {
		return o.StaleAfter
	}
	return DefaultStaleAfter
}

func (o Options) refreshEvery() time.Duration {
	if o.RefreshEvery > 0 {
		return o.RefreshEvery
	}
	return DefaultRefreshEvery
}

// Parse parses a lock file's content, which may have been written by anyone who can
// write the lock's directory: it is bounded and checked.
func Parse(b []byte) (Info, error) {
	var li Info
	if len(b) > MaxSize {
		return li, fmt.Errorf("lock file of %d bytes: larger than %d", len(b), MaxSize)
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

// Host is this host's name as locks record it.
func Host() string {
	hostOnce.Do(func() {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "unknown-host"
		}
		hostName = h
	})
	return hostName
}

// NewToken returns a random token that names one holding of a lock.
func NewToken() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b[:])
}

// State reads the lock at path and says whether it is stale after staleAge. raw is the
// content judged (for Break). A path that is not a regular file is ErrNotRegular.
func State(path string, staleAge time.Duration) (raw []byte, li Info, stale bool, err error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, li, false, fmt.Errorf("lock %s: %w (a symlink)", path, ErrNotRegular)
	}
	if err != nil {
		return nil, li, false, err
	}
	defer f.Close()
	st, err := f.Stat() // the age and the content of one and the same file
	if err != nil {
		return nil, li, false, err
	}
	if !st.Mode().IsRegular() {
		return nil, li, false, fmt.Errorf("lock %s: %w (%s)", path, ErrNotRegular, st.Mode().Type())
	}
	raw, err = io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, li, false, err
	}
	age := time.Since(st.ModTime())
	li, perr := Parse(raw)
	switch {
	case perr != nil:
		// Not written by us (ours are complete before they appear): judge by age.
		stale = age > GuardStaleAge
	case li.Host == Host() && li.PID != os.Getpid() && !fsutil.ProcessAlive(li.PID):
		stale = true
	default:
		stale = age > staleAge
	}
	return raw, li, stale, nil
}

// Lock is a lock this process holds.
type Lock struct {
	Path  string
	Token string
	stop  chan struct{}
	done  chan struct{}
}

// Create makes path atomically with a complete Info, failing with fs.ErrExist when
// someone holds it. It neither waits nor refreshes: Acquire and TryAcquire do.
func Create(path string) (*Lock, error) {
	li := Info{Host: Host(), PID: os.Getpid(), Time: time.Now().UTC(), Token: NewToken()}
	b, _ := json.Marshal(li)
	tmp := filepath.Join(filepath.Dir(path), TempPrefix+li.Token)
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
			return CreateExcl(path, li, b)
		default:
			return nil, err
		}
	}
	return &Lock{Path: path, Token: li.Token}, nil
}

// CreateExcl is Create for file systems without hard links: O_CREAT|O_EXCL, then b
// (the encoded li) is written.
func CreateExcl(path string, li Info, b []byte) (*Lock, error) {
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
	return &Lock{Path: path, Token: li.Token}, nil
}

func nlink(st fs.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(s.Nlink)
	}
	return 0
}

// Acquire takes the lock at path, waiting with backoff (20 ms doubling to 2 s) while a
// live owner holds it and taking it over when stale. When ctx ends first it returns a
// *HeldError naming the owner (errors.Is ErrHeld and the context's error). An error
// creating the file (read-only or full file system) is returned as it is. The lock's
// directory must exist.
func Acquire(ctx context.Context, path string, o Options) (*Lock, error) {
	wait := pollMin
	for {
		l, err := Create(path)
		if err == nil {
			l.startRefresh(o.refreshEvery())
			return l, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		raw, li, stale, err := State(path, o.staleAfter())
		if errors.Is(err, fs.ErrNotExist) {
			continue // released meanwhile: try again at once
		}
		if err != nil {
			return nil, err
		}
		if stale && Break(path, raw, o) {
			continue
		}
		select {
		case <-ctx.Done():
			return nil, &HeldError{Path: path, Owner: li, Cause: context.Cause(ctx)}
		case <-time.After(wait + mrand.N(wait/2+1)):
		}
		wait = min(wait*2, pollMax)
	}
}

// TryAcquire takes the lock at path without waiting for a live owner (a stale lock is
// taken over): a held lock gives a *HeldError (errors.Is ErrHeld).
func TryAcquire(path string, o Options) (*Lock, error) {
	for tries := 0; ; tries++ {
		l, err := Create(path)
		if err == nil {
			l.startRefresh(o.refreshEvery())
			return l, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		raw, li, stale, err := State(path, o.staleAfter())
		if errors.Is(err, fs.ErrNotExist) && tries < 3 {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !stale || tries >= 3 || !Break(path, raw, o) {
			return nil, &HeldError{Path: path, Owner: li}
		}
	}
}

// Break removes the stale lock at path if it still holds raw. It reports whether the
// caller should try to create the lock again at once.
func Break(path string, raw []byte, o Options) bool {
	if o.BeforeBreak != nil {
		o.BeforeBreak()
	}
	guard := path + ".break"
	g, err := Create(guard)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			// A recoverer that died holding the guard must not block everyone.
			if graw, _, gstale, err := State(guard, GuardStaleAge); err == nil && gstale {
				RemoveIfSame(guard, graw)
			}
		}
		return false
	}
	defer g.Release()
	return RemoveIfSame(path, raw)
}

// RemoveIfSame renames path to a unique name and deletes it if its content is raw (or
// raw is nil); a file that changed meanwhile is put back. The rename makes the check and
// the removal refer to the same file.
func RemoveIfSame(path string, raw []byte) bool {
	aside := filepath.Join(filepath.Dir(path), TempPrefix+"stale-"+NewToken())
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

// startRefresh touches the lock every interval until Release, so other hosts see the
// owner alive however long the work takes.
func (l *Lock) startRefresh(every time.Duration) {
	l.stop = make(chan struct{})
	l.done = make(chan struct{})
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
				_ = os.Chtimes(l.Path, now, now)
			}
		}
	}()
}

// StopRefresh stops touching the lock, leaving it in place: to other processes its
// owner then looks dead or silent (tests use it to leave a lock behind).
func (l *Lock) StopRefresh() {
	if l.stop != nil {
		select {
		case <-l.stop:
		default:
			close(l.stop)
		}
		<-l.done
	}
}

// Release stops the refresh and removes the lock if it is still ours. It may be called
// more than once.
func (l *Lock) Release() {
	if l == nil {
		return
	}
	l.StopRefresh()
	b, err := os.ReadFile(l.Path)
	if err != nil {
		return
	}
	if li, err := Parse(b); err == nil && li.Token == l.Token {
		os.Remove(l.Path)
	}
}
