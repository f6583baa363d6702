package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestConcurrentCommitGoroutines(t *testing.T) {
	c := Open(t.TempDir())
	d := testDigest("shared")
	var builds atomic.Int32
	var wg sync.WaitGroup
	paths := make([]string, 8)
	errs := make([]error, 8)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each goroutine opens the cache on its own, like separate callers do.
			paths[i], _, _, errs[i] = Open(c.Dir).Commit(context.Background(), d, func(ctx context.Context, tmp string) (*Meta, error) {
				builds.Add(1)
				time.Sleep(200 * time.Millisecond)
				return sifBuilder("shared")(ctx, tmp)
			})
		}()
	}
	wg.Wait()
	for i := range paths {
		if errs[i] != nil || paths[i] != paths[0] {
			t.Errorf("committer %d: %s %v; want %s", i, paths[i], errs[i], paths[0])
		}
	}
	if n := builds.Load(); n != 1 {
		t.Fatalf("build called %d times, want 1", n)
	}
	if err := checkSIF(paths[0], fileSize(paths[0])); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentCommitProcesses(t *testing.T) {
	for _, staleFirst := range []bool{false, true} {
		name := map[bool]string{false: "empty cache", true: "all recovering one stale lock"}[staleFirst]
		t.Run(name, func(t *testing.T) { concurrentProcesses(t, staleFirst) })
	}
}

// concurrentProcesses starts 8 committer processes of one digest, optionally over
// the stale lock and temp file of a dead committer, and checks that one built.
func concurrentProcesses(t *testing.T, staleFirst bool) {
	dir := t.TempDir()
	d := testDigest("shared")
	buildsFile := filepath.Join(t.TempDir(), "builds")
	if staleFirst {
		hex, _ := ParseDigest(d)
		c := Open(dir)
		writeLock(t, c.lockPath(hex), lockJSON(thisHost(), deadPID(t), time.Now()), 0)
		writeLock(t, filepath.Join(c.tmpDir(), hex+".0123.sif"), []byte("half"), 0)
	}
	const n = 8
	cmds := make([]*exec.Cmd, n)
	outs := make([]*bytes.Buffer, n)
	for i := range cmds {
		cmds[i] = helperCmd("commit", "CACHE_DIR="+dir, "DIGEST="+d, "BUILDS="+buildsFile, "BUILD_MS=300")
		outs[i] = &bytes.Buffer{}
		cmds[i].Stdout, cmds[i].Stderr = outs[i], outs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	built := 0
	var first string
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("committer process %d: %v\n%s", i, err, outs[i])
		}
		path, b, _ := strings.Cut(strings.TrimSpace(outs[i].String()), " ")
		if b == "true" {
			built++
		}
		if first == "" {
			first = path
		}
		if path != first {
			t.Errorf("process %d got %q, process 0 got %q", i, path, first)
		}
	}
	lines, _ := os.ReadFile(buildsFile)
	if got := strings.Count(string(lines), "\n"); got != 1 || built != 1 {
		t.Fatalf("%d builds (%d reported built), want 1: %q", got, built, lines)
	}
	c := Open(dir)
	if _, _, err := c.Lookup(d); err != nil {
		t.Fatal(err)
	}
	res, err := c.Verify(context.Background())
	wantResults := 1
	if staleFirst {
		wantResults = 2 // the dead committer's temp file stays until gc
	}
	if err != nil || len(res) != wantResults || res[0].Status != StatusOK {
		t.Fatalf("verify after concurrent commits: %+v %v", res, err)
	}
	if left, _ := readDirNames(c.locksDir()); len(left) != 0 {
		t.Errorf("locks left: %v", left)
	}
}

// startHanging starts a committer that holds the lock with a half-written temp SIF,
// and kills it with SIGKILL.
func killCommitter(t *testing.T, dir, digest string) string {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := helperCmd("hang", "CACHE_DIR="+dir, "DIGEST="+digest, "READY="+ready)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(ready); err == nil && len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("helper never started its build: %s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	tmp, _ := os.ReadFile(ready)
	return string(tmp)
}

func TestKilledCommitterIsRecovered(t *testing.T) {
	for _, gcFirst := range []bool{true, false} {
		name := map[bool]string{true: "gc then commit", false: "commit recovers"}[gcFirst]
		t.Run(name, func(t *testing.T) {
			c := Open(t.TempDir())
			d := testDigest("killed")
			tmp := killCommitter(t, c.Dir, d)
			if _, err := os.Stat(tmp); err != nil {
				t.Fatalf("the killed build left no temp file: %v", err)
			}
			if _, _, err := c.Lookup(d); !errors.Is(err, ErrNotCached) {
				t.Fatalf("lookup after a killed conversion: %v", err)
			}
			res, err := c.Verify(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			got := map[Status]int{}
			for _, r := range res {
				got[r.Status]++
			}
			if got[StatusStaleLock] != 1 || got[StatusStaleTemp] != 1 || len(res) != 2 {
				t.Fatalf("verify = %+v; want one stale lock and one stale temp", res)
			}
			if gcFirst {
				rep, err := c.GC(context.Background(), GCOptions{})
				if err != nil || len(rep.Removed) != 2 || len(rep.Errors) != 0 {
					t.Fatalf("gc = %+v, %v", rep, err)
				}
				for _, dir := range []string{c.tmpDir(), c.locksDir()} {
					if left, _ := readDirNames(dir); len(left) != 0 {
						t.Errorf("gc left %v in %s", left, dir)
					}
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, _, built, err := c.Commit(ctx, d, sifBuilder("killed")); err != nil || !built {
				t.Fatalf("commit after the kill: built=%v err=%v", built, err)
			}
			if !gcFirst {
				// The dead owner's temp file is debris now; GC removes it, and only it.
				rep, err := c.GC(context.Background(), GCOptions{})
				if err != nil || len(rep.Removed) != 1 || rep.Removed[0].Path != tmp {
					t.Fatalf("gc after recovery = %+v, %v; want %s removed", rep, err, tmp)
				}
			}
			if _, _, err := c.Lookup(d); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func writeLock(t *testing.T, path string, content []byte, age time.Duration) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	when := time.Now().Add(-age)
	if err := os.Chtimes(path, when, when); err != nil {
		t.Fatal(err)
	}
}

func lockJSON(host string, pid int, at time.Time) []byte {
	b, _ := json.Marshal(LockInfo{Host: host, PID: pid, Time: at, Token: "t"})
	return b
}

func TestStaleLocks(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name    string
		content func(t *testing.T) []byte
		age     time.Duration
		stale   bool
	}{
		{"other host, silent for longer than the stale age", func(*testing.T) []byte { return lockJSON("node-17", 4242, now.Add(-3*time.Hour)) }, 3 * time.Hour, true},
		{"other host, refreshed recently", func(*testing.T) []byte { return lockJSON("node-17", 4242, now.Add(-3*time.Hour)) }, time.Second, false},
		{"this host, dead owner", func(t *testing.T) []byte { return lockJSON(thisHost(), deadPID(t), now) }, 0, true},
		{"this host, live owner", func(*testing.T) []byte { return lockJSON(thisHost(), os.Getppid(), now) }, time.Second, false},
		{"this host, live pid silent for too long (pid reused)", func(*testing.T) []byte { return lockJSON(thisHost(), os.Getppid(), now) }, 3 * time.Hour, true},
		{"unparsable and old", func(*testing.T) []byte { return []byte("{{{") }, time.Hour, true},
		{"unparsable and fresh", func(*testing.T) []byte { return nil }, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Open(t.TempDir())
			d := testDigest("locked")
			hex, _ := ParseDigest(d)
			writeLock(t, c.lockPath(hex), tt.content(t), tt.age)
			wait := 400 * time.Millisecond // how long a live lock is waited for
			if tt.stale {
				wait = 20 * time.Second // only a bound: recovery is immediate
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			_, _, built, err := c.Commit(ctx, d, sifBuilder("locked"))
			if tt.stale {
				if err != nil || !built {
					t.Fatalf("commit over a stale lock: built=%v err=%v", built, err)
				}
				return
			}
			if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waiting for the lock") {
				t.Fatalf("commit over a live lock = %v; want it to wait until the deadline", err)
			}
			if b, _ := os.ReadFile(c.lockPath(hex)); !bytes.Equal(b, tt.content(t)) && tt.content(t) != nil {
				t.Errorf("a live lock was touched: %s", b)
			}
		})
	}
}

func TestLockRefreshKeepsOwnerAlive(t *testing.T) {
	dir := t.TempDir()
	d := testDigest("slow")
	c := &Cache{Dir: dir, StaleAfter: 800 * time.Millisecond, RefreshEvery: 50 * time.Millisecond}
	var builds atomic.Int32
	build := func(ctx context.Context, tmp string) (*Meta, error) {
		builds.Add(1)
		time.Sleep(2400 * time.Millisecond) // three stale ages
		return sifBuilder("slow")(ctx, tmp)
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, _, err := c.Commit(context.Background(), d, build); err != nil {
				t.Error(err)
			}
		}()
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()
	if n := builds.Load(); n != 1 {
		t.Fatalf("a refreshed lock was broken: %d builds", n)
	}
}

// TestLockMutualExclusion has owners that "die" holding the lock (they leave it with a
// dead pid) so that every acquisition has to break a stale lock, concurrently.
func TestLockMutualExclusion(t *testing.T) {
	c := Open(t.TempDir())
	path := c.lockPath(strings.Repeat("a", 64))
	dead := deadPID(t)
	testHookBeforeBreak = func() { time.Sleep(2 * time.Millisecond) }
	defer func() { testHookBeforeBreak = nil }()
	var inside, maxInside, rounds atomic.Int32
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 15 {
				l, err := c.acquire(context.Background(), path, "test")
				if err != nil {
					t.Error(err)
					return
				}
				n := inside.Add(1)
				if n > maxInside.Load() {
					maxInside.Store(n)
				}
				time.Sleep(time.Millisecond)
				inside.Add(-1)
				rounds.Add(1)
				l.lock.StopRefresh()
				// Die holding it: the lock now names a dead process.
				os.WriteFile(path, lockJSON(thisHost(), dead, time.Now()), 0o644)
			}
		}()
	}
	wg.Wait()
	if maxInside.Load() != 1 || rounds.Load() != 90 {
		t.Fatalf("max holders at once = %d over %d rounds; want 1 over 90", maxInside.Load(), rounds.Load())
	}
	left, _ := readDirNames(filepath.Dir(path))
	for _, n := range left {
		if n != filepath.Base(path) {
			t.Errorf("left behind in locks/: %s", n)
		}
	}
}

func FuzzParseLock(f *testing.F) {
	f.Add(lockJSON("node-1", 12, time.Unix(1700000000, 0).UTC()))
	f.Add([]byte(`{"host":"","pid":0}`))
	f.Add([]byte(`{"host":"h","pid":-1,"time":"bad"}`))
	f.Add([]byte(`null`))
	f.Add([]byte(strings.Repeat(" ", 5000)))
	f.Fuzz(func(t *testing.T, b []byte) {
		li, err := ParseLock(b)
		if err != nil {
			return
		}
		if li.Host == "" || li.PID <= 0 || len(b) > maxLockFile {
			t.Fatalf("ParseLock accepted %q as %+v", b, li)
		}
		again, err := json.Marshal(li)
		if err != nil {
			t.Fatal(err)
		}
		li2, err := ParseLock(again)
		if err != nil || li2.Host != li.Host || li2.PID != li.PID || !li2.Time.Equal(li.Time) {
			t.Fatalf("round trip of %+v: %+v %v", li, li2, err)
		}
	})
}
