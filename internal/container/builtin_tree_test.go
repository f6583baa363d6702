package container

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// release drops what a builtin runtime holds, as its process exit would.
func release(t *testing.T, rt Runtime) {
	t.Helper()
	b := rt.(*builtinRuntime)
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, u := range b.prepared {
		if u.lock != nil {
			u.lock.close()
		}
		if u.dir != nil {
			u.dir.Close()
		}
	}
}

// holdShared simulates another process using a tree: its own open file description
// of the lock file, locked shared.
func holdShared(t *testing.T, lock string) {
	t.Helper()
	f, err := os.OpenFile(lock, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// TestBuiltinTreeCheck: a tree unpacked earlier is checked against its record at
// Prepare; what is missing is put back (re-unpacked, or only the mount points).
func TestBuiltinTreeCheck(t *testing.T) {
	img := buildSIF(t, []string{"PATH=/bin"})
	defer func(d time.Duration) { inUseAfter = d }(inUseAfter)
	inUseAfter = 300 * time.Millisecond
	cases := []struct {
		name       string
		damage     func(t *testing.T, root string)
		reunpacked bool   // the tree at root was replaced
		private    bool   // a private copy was used instead
		log        string // in the second runtime's log
	}{
		{"intact", func(*testing.T, string) {}, false, false, ""},
		{"file deleted", func(t *testing.T, root string) {
			if err := os.Remove(filepath.Join(root, "bin", "probe")); err != nil {
				t.Fatal(err)
			}
		}, true, false, "unpacked tree damaged"},
		{"file truncated", func(t *testing.T, root string) {
			if err := os.Truncate(filepath.Join(root, "bin", "probe"), 10); err != nil {
				t.Fatal(err)
			}
		}, true, false, "bytes_found"},
		{"mount point removed", func(t *testing.T, root string) {
			if err := os.Remove(filepath.Join(root, "out")); err != nil {
				t.Fatal(err)
			}
		}, false, false, ""},
		{"no record", func(t *testing.T, root string) {
			if err := os.Remove(root + ".json"); err != nil {
				t.Fatal(err)
			}
		}, true, false, `"record":"missing"`},
		{"bad record", func(t *testing.T, root string) {
			if err := os.WriteFile(root+".json", []byte("{"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, true, false, "unpacked tree damaged"},
		{"damaged while another process uses it", func(t *testing.T, root string) {
			os.Remove(filepath.Join(root, "bin", "probe"))
			holdShared(t, root+".lock")
		}, false, true, "unpacking a private copy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			rt1 := NewBuiltin(BuiltinOptions{Dir: dir, Log: nopLog})
			if err := rt1.Prepare(context.Background(), img); err != nil {
				t.Fatal(err)
			}
			key, _ := rootfsKey(img)
			root := filepath.Join(dir, key)
			want, err := readRecord(root + ".json")
			if err != nil {
				t.Fatalf("no record after unpacking: %v", err)
			}
			if got, _ := treeStats(root); !got.same(*want) || want.Entries < int64(1+len(mountPoints)) {
				t.Fatalf("record %+v, tree %+v", want, got)
			}
			release(t, rt1)
			before := inode(t, root)
			c.damage(t, root)

			var log bytes.Buffer
			rt2 := NewBuiltin(BuiltinOptions{Dir: dir, Log: zerolog.New(&log)})
			u, err := rt2.(*builtinRuntime).prepare(context.Background(), img)
			if err != nil {
				t.Fatalf("%v\n%s", err, log.String())
			}
			defer release(t, rt2)
			if c.private {
				if u.root == root || !strings.HasPrefix(u.root, root+".tmp-") || u.lock != nil {
					t.Errorf("private copy: root %s, lock %v", u.root, u.lock)
				}
				if _, err := os.Stat(filepath.Join(u.root, "bin", "probe")); err != nil {
					t.Errorf("private copy incomplete: %v", err)
				}
			} else if u.root != root || u.lock == nil {
				t.Errorf("root %s (want %s), lock %v", u.root, root, u.lock)
			}
			if c.log != "" && !strings.Contains(log.String(), c.log) {
				t.Errorf("log lacks %q:\n%s", c.log, log.String())
			}
			if c.private {
				return
			}
			if got := inode(t, root) != before; got != c.reunpacked {
				t.Errorf("re-unpacked = %v, want %v\n%s", got, c.reunpacked, log.String())
			}
			rec, err := readRecord(root + ".json")
			if err != nil || !rec.same(*want) {
				t.Errorf("record after Prepare: %+v, %v (want %+v)", rec, err, want)
			}
			if got, _ := treeStats(root); !got.same(*want) {
				t.Errorf("tree after Prepare %+v, want %+v", got, *want)
			}
			if fi, err := os.Stat(root + ".json"); err != nil || time.Since(fi.ModTime()) > time.Minute {
				t.Errorf("record not touched: %v", err)
			}
			if left, _ := filepath.Glob(root + ".*-*"); len(left) > 0 {
				t.Errorf("leftovers: %v", left)
			}
		})
	}
}

// TestBuiltinPrune: after a Prepare, trees of other images unused for MaxAge and held
// by nobody go, with their record and lock; leftovers of dead processes go; anything
// else stays.
func TestBuiltinPrune(t *testing.T) {
	img := buildSIF(t, []string{"PATH=/bin"})
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID := dead.Process.Pid
	key := func(c byte) string { return "sha256-" + strings.Repeat(string(c), 64) }
	old := time.Now().Add(-40 * 24 * time.Hour)
	age := func(t *testing.T, paths ...string) {
		for _, p := range paths {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	// tree makes a fake tree with its record and lock, last used at when.
	tree := func(t *testing.T, dir, k string, record, aged bool) string {
		root := filepath.Join(dir, k)
		if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(root, "bin", "x"), make([]byte, 1000), 0o644)
		os.WriteFile(root+".lock", nil, 0o600)
		paths := []string{filepath.Join(root, "bin", "x"), filepath.Join(root, "bin"), root, root + ".lock"}
		if record {
			if err := writeRecord(root+".json", treeRecord{Entries: 2, Bytes: 1000}); err != nil {
				t.Fatal(err)
			}
			paths = append(paths, root+".json")
		}
		if aged {
			age(t, paths...)
		}
		return root
	}
	type want struct {
		gone, kept []string // names in dir
		log        string
	}
	cases := []struct {
		name   string
		maxAge time.Duration
		setup  func(t *testing.T, dir string) want
	}{
		{"old unused tree removed", 0, func(t *testing.T, dir string) want {
			tree(t, dir, key('a'), true, true)
			tree(t, dir, "file-"+strings.Repeat("b", 32), false, true) // no record
			return want{gone: []string{key('a'), key('a') + ".json", key('a') + ".lock", "file-" + strings.Repeat("b", 32),
				"file-" + strings.Repeat("b", 32) + ".lock"}, log: `"bytes":1000`}
		}},
		{"old tree in use kept", 0, func(t *testing.T, dir string) want {
			root := tree(t, dir, key('a'), true, true)
			holdShared(t, root+".lock")
			return want{kept: []string{key('a'), key('a') + ".json", key('a') + ".lock"}}
		}},
		{"recent tree kept", 0, func(t *testing.T, dir string) want {
			tree(t, dir, key('a'), true, false)
			return want{kept: []string{key('a'), key('a') + ".json", key('a') + ".lock"}}
		}},
		{"short max age", time.Hour, func(t *testing.T, dir string) want {
			root := tree(t, dir, key('a'), true, false)
			h := time.Now().Add(-2 * time.Hour)
			for _, p := range []string{root, root + ".json", root + ".lock"} {
				os.Chtimes(p, h, h)
			}
			return want{gone: []string{key('a'), key('a') + ".json", key('a') + ".lock"}}
		}},
		{"never", -1, func(t *testing.T, dir string) want {
			tree(t, dir, key('a'), true, true)
			return want{kept: []string{key('a'), key('a') + ".json", key('a') + ".lock"}}
		}},
		{"foreign files ignored", 0, func(t *testing.T, dir string) want {
			names := []string{"notes.txt", "sha256-abc", "sha256-" + strings.Repeat("A", 64), key('c') + ".bak",
				"file-" + strings.Repeat("d", 31), "." + key('e') + ".json.tmp-123", key('f') + ".tmp-x"}
			for _, n := range names {
				p := filepath.Join(dir, n)
				if err := os.MkdirAll(p, 0o755); err != nil {
					t.Fatal(err)
				}
				age(t, p)
			}
			f := filepath.Join(dir, key('g')) // a tree name that is a file, not a tree
			os.WriteFile(f, []byte("mine"), 0o644)
			age(t, f)
			return want{kept: append(names, key('g'))}
		}},
		{"stale leftovers removed", 0, func(t *testing.T, dir string) want {
			gone := []string{
				fmt.Sprintf("%s.tmp-%d", key('a'), deadPID),
				fmt.Sprintf("%s.old-%d", key('a'), deadPID),
				fmt.Sprintf("%s.tmp-%d-3", key('b'), deadPID),
			}
			kept := []string{
				fmt.Sprintf("%s.tmp-%d", key('c'), os.Getpid()),
				fmt.Sprintf("%s.tmp-%d", key('d'), os.Getppid()),
				fmt.Sprintf("%s.old-%d", key('e'), 1),
			}
			for _, n := range append(append([]string{}, gone...), kept...) {
				if err := os.MkdirAll(filepath.Join(dir, n, "usr"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			return want{gone: gone, kept: kept, log: "leftover"}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			w := c.setup(t, dir)
			var log bytes.Buffer
			rt := NewBuiltin(BuiltinOptions{Dir: dir, MaxAge: c.maxAge, Log: zerolog.New(&log)})
			defer release(t, rt)
			if err := rt.Prepare(context.Background(), img); err != nil {
				t.Fatal(err)
			}
			for _, n := range w.gone {
				if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
					t.Errorf("%s not removed", n)
				}
			}
			for _, n := range w.kept {
				if _, err := os.Lstat(filepath.Join(dir, n)); err != nil {
					t.Errorf("%s removed: %v", n, err)
				}
			}
			if own, _ := rootfsKey(img); !exists(filepath.Join(dir, own)) {
				t.Error("the tree just prepared is gone")
			}
			if w.log != "" && !strings.Contains(log.String(), w.log) {
				t.Errorf("log lacks %q:\n%s", w.log, log.String())
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "*.old-*")); len(w.gone) > 0 && len(left) > 0 {
				for _, l := range left {
					if !strings.HasSuffix(l, ".old-1") {
						t.Errorf("leftover %s", l)
					}
				}
			}
		})
	}
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

// TestPruneWaitsForLock: a Prepare waiting for a tree while it is pruned (the pruner
// unlinks the lock file it holds) opens the new lock file and unpacks the tree again.
func TestPruneWaitsForLock(t *testing.T) {
	img := buildSIF(t, []string{"PATH=/bin"})
	dir := t.TempDir()
	rt1 := NewBuiltin(BuiltinOptions{Dir: dir, Log: nopLog})
	if err := rt1.Prepare(context.Background(), img); err != nil {
		t.Fatal(err)
	}
	release(t, rt1)
	k, _ := rootfsKey(img)
	root := filepath.Join(dir, k)
	old := time.Now().Add(-40 * 24 * time.Hour)
	for _, p := range []string{root, root + ".json", root + ".lock"} {
		os.Chtimes(p, old, old)
	}
	// The pruner (another runtime) takes the lock first, as pruneTree does.
	l, err := openTreeLock(root + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := l.try(syscall.LOCK_EX); !ok || err != nil {
		t.Fatalf("lock: %v %v", ok, err)
	}
	done := make(chan error, 1)
	rt2 := NewBuiltin(BuiltinOptions{Dir: dir, Log: nopLog})
	defer release(t, rt2)
	go func() { done <- rt2.Prepare(context.Background(), img) }()
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Prepare returned while the tree was locked: %v", err)
	default:
	}
	// Remove as pruneTree does, holding the lock, then let go.
	os.RemoveAll(root)
	os.Remove(root + ".json")
	os.Remove(root + ".lock")
	l.close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "bin", "probe")); err != nil {
		t.Errorf("tree not unpacked again: %v", err)
	}
	b := rt2.(*builtinRuntime)
	for _, u := range b.prepared {
		held, _ := u.lock.f.Stat()
		now, err := os.Stat(root + ".lock")
		if err != nil || !os.SameFile(held, now) {
			t.Errorf("the runtime holds a lock file no longer at %s.lock", root)
		}
	}
}

// TestUnpackLeftoverIsPruned: unpack extracts into the <key>.tmp-PID it is given and
// creates no name of its own next to it, so what a process killed during unsquashfs
// leaves is a leftover that a later prune removes once the process is gone.
func TestUnpackLeftoverIsPruned(t *testing.T) {
	img := buildSIF(t, []string{"PATH=/bin"})
	dir := t.TempDir()
	// A stand-in unsquashfs that starts a tree in its -d directory, notes what the
	// directory of trees holds, and fails as a killed one would.
	bin, seen := t.TempDir(), filepath.Join(t.TempDir(), "seen")
	script := fmt.Sprintf(`#!/bin/sh
while [ $# -gt 0 ]; do [ "$1" = -d ] && d=$2; shift; done
mkdir -p "$d/usr" && ls %q > %q
exit 1
`, dir, seen)
	if err := os.WriteFile(filepath.Join(bin, "unsquashfs"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	rt := NewBuiltin(BuiltinOptions{Dir: dir, Log: nopLog})
	defer release(t, rt)
	if err := rt.Prepare(context.Background(), img); err == nil {
		t.Fatal("Prepare succeeded with a failing unsquashfs")
	}
	b, err := os.ReadFile(seen)
	if err != nil {
		t.Fatalf("the stand-in unsquashfs did not run: %v", err)
	}
	key, _ := rootfsKey(img)
	var partial string
	for _, n := range strings.Fields(string(b)) {
		switch {
		case n == key+".lock":
		case treeLeftover.MatchString(n) && strings.HasPrefix(n, key+".tmp-"):
			partial = n
		default:
			t.Errorf("unpacking made %s, which prune would never remove", n)
		}
	}
	if want := fmt.Sprintf("%s.tmp-%d", key, os.Getpid()); partial != want {
		t.Fatalf("partial tree %q, want %q", partial, want)
	}

	// The same shape left by a process no longer running goes at the next prune.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(dir, fmt.Sprintf("%s.tmp-%d", key, dead.Process.Pid))
	if err := os.MkdirAll(filepath.Join(left, "usr"), 0o755); err != nil {
		t.Fatal(err)
	}
	rt.(*builtinRuntime).prune(nil)
	if exists(left) {
		t.Errorf("leftover %s not pruned", left)
	}
}
