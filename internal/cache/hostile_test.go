package cache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// secret is the content of a file outside the cache that hostile cache files point
// at; it must never appear in anything the cache reports.
const secret = "root:x:0:0:SECRET-LINE:/root:/bin/bash\n"

// hostileFile is one file someone with write access to a shared cache planted.
type hostileFile struct {
	name   string
	plant  func(t *testing.T, c *Cache, hex, outside string)
	status Status // what Verify reports
	// lookupFails: Lookup of the entry must fail (ErrCorrupt) rather than trust it.
	lookupFails bool
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

var hostileFiles = []hostileFile{
	{"FIFO in refs", func(t *testing.T, c *Cache, hex, outside string) {
		mkfifo(t, filepath.Join(c.refsDir(), "faces"))
	}, StatusBadRef, false},
	{"symlink in refs to a file outside", func(t *testing.T, c *Cache, hex, outside string) {
		symlink(t, outside, filepath.Join(c.refsDir(), "faces"))
	}, StatusBadRef, false},
	{"symlink in refs to a sound ref", func(t *testing.T, c *Cache, hex, outside string) {
		sound := filepath.Join(t.TempDir(), "ref")
		os.WriteFile(sound, []byte(sha256Prefix+hex+"\n"), 0o644)
		symlink(t, sound, filepath.Join(c.refsDir(), "faces"))
	}, StatusBadRef, false},
	{"huge ref file", func(t *testing.T, c *Cache, hex, outside string) {
		big := strings.Repeat(sha256Prefix+hex+"\n", 1000)
		os.WriteFile(filepath.Join(c.refsDir(), "faces"), []byte(big), 0o644)
	}, StatusBadRef, false},
	{"ref holding a copy of a secret file", func(t *testing.T, c *Cache, hex, outside string) {
		os.WriteFile(filepath.Join(c.refsDir(), "faces"), []byte(secret), 0o644)
	}, StatusBadRef, false},
	{"directory in refs", func(t *testing.T, c *Cache, hex, outside string) {
		os.MkdirAll(filepath.Join(c.refsDir(), "faces"), 0o755)
	}, StatusBadRef, false},
	{"FIFO as metadata", func(t *testing.T, c *Cache, hex, outside string) {
		os.Remove(c.metaPath(hex))
		mkfifo(t, c.metaPath(hex))
	}, StatusCorrupt, true},
	{"symlink as metadata", func(t *testing.T, c *Cache, hex, outside string) {
		os.Rename(c.metaPath(hex), filepath.Join(t.TempDir(), "meta.json"))
		symlink(t, outside, c.metaPath(hex))
	}, StatusCorrupt, true},
	{"symlink as the SIF", func(t *testing.T, c *Cache, hex, outside string) {
		moved := filepath.Join(t.TempDir(), "real.sif")
		os.Rename(c.sifPath(hex), moved)
		symlink(t, moved, c.sifPath(hex))
	}, StatusCorrupt, true},
	{"FIFO as the SIF", func(t *testing.T, c *Cache, hex, outside string) {
		os.Remove(c.sifPath(hex))
		mkfifo(t, c.sifPath(hex))
	}, StatusCorrupt, true},
	{"FIFO as a lock", func(t *testing.T, c *Cache, hex, outside string) {
		mkfifo(t, c.lockPath(testDigest("other")[7:]))
	}, StatusBadFile, false},
	{"symlink as a lock", func(t *testing.T, c *Cache, hex, outside string) {
		symlink(t, outside, c.lockPath(testDigest("other")[7:]))
	}, StatusBadFile, false},
}

// TestHostileCacheFiles plants symlinks, FIFOs, directories and oversized files where
// the cache keeps its own files: every read finishes, nothing outside is read or
// echoed, Verify names the file, and GC removes it without touching what it points to.
func TestHostileCacheFiles(t *testing.T) {
	for _, h := range hostileFiles {
		t.Run(h.name, func(t *testing.T) {
			c := Open(t.TempDir())
			d, _ := commitTest(t, c, "faces")
			hex, _ := ParseDigest(d)
			other, otherPath := commitTest(t, c, "other")
			if err := c.SetRef("other", other); err != nil {
				t.Fatal(err)
			}
			outside := filepath.Join(t.TempDir(), "passwd")
			if err := os.WriteFile(outside, []byte(secret), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(c.refsDir(), 0o755); err != nil {
				t.Fatal(err)
			}
			h.plant(t, c, hex, outside)

			// Every read returns, whatever was planted (a FIFO would block an open).
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			type answer struct {
				res []VerifyResult
				err error
			}
			done := make(chan answer, 1)
			go func() {
				if _, err := c.List(); err != nil {
					done <- answer{err: err}
					return
				}
				c.Refs()
				c.ResolveRef("faces")
				c.Lookup(d)
				res, err := c.Verify(ctx)
				done <- answer{res, err}
			}()
			var got answer
			select {
			case got = <-done:
			case <-ctx.Done():
				t.Fatal("a read of the cache blocked on the planted file")
			}
			if got.err != nil {
				t.Fatalf("verify: %v", got.err)
			}
			var found *VerifyResult
			for i, r := range got.res {
				if strings.Contains(r.Detail, "SECRET") {
					t.Errorf("verify echoes the file's content: %+v", r)
				}
				if r.Problem() && found == nil {
					found = &got.res[i]
				} else if r.Problem() {
					t.Errorf("second problem: %+v", r)
				}
			}
			if found == nil || found.Status != h.status {
				t.Fatalf("verify = %+v; want %s", got.res, h.status)
			}
			if ref, err := c.ResolveRef("faces"); err == nil && h.status == StatusBadRef {
				t.Errorf("a bad ref resolves to %s", ref)
			}
			if _, _, err := c.Lookup(d); h.lookupFails && !errors.Is(err, ErrCorrupt) {
				t.Errorf("Lookup of the entry trusts the planted file: %v", err)
			}

			rep, err := c.GC(ctx, GCOptions{Corrupt: true})
			if err != nil || len(rep.Errors) != 0 || len(rep.Removed) == 0 {
				t.Fatalf("gc = %+v, %v", rep, err)
			}
			if b, err := os.ReadFile(outside); err != nil || string(b) != secret {
				t.Fatalf("gc touched the file outside the cache: %q %v", b, err)
			}
			after, err := c.Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range after {
				if r.Problem() {
					t.Errorf("after gc: %+v", r)
				}
			}
			if p, _, err := c.Lookup(other); err != nil || p != otherPath {
				t.Errorf("gc hurt the sound entry: %v", err)
			}
		})
	}
}

// TestSymlinkedRefsDir: a refs/ that is a symlink to another directory is reported and
// never cleaned: GC must not delete the files of the directory it points to.
func TestSymlinkedRefsDir(t *testing.T) {
	c := Open(t.TempDir())
	commitTest(t, c, "faces")
	elsewhere := t.TempDir()
	victim := filepath.Join(elsewhere, "passwd")
	if err := os.WriteFile(victim, []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	symlink(t, elsewhere, c.refsDir())

	if _, err := c.ResolveRef("passwd"); err == nil {
		t.Error("ResolveRef reads through a symlinked refs/")
	}
	if refs, err := c.Refs(); err == nil || len(refs) != 0 {
		t.Errorf("Refs through a symlinked refs/ = %v, %v", refs, err)
	}
	res, err := c.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for _, r := range res {
		if r.Problem() {
			bad++
			if r.Status != StatusBadFile || r.Path != c.refsDir() {
				t.Errorf("verify: %+v", r)
			}
		}
	}
	if bad != 1 {
		t.Fatalf("verify = %+v; want one bad-file for refs/", res)
	}
	if _, err := c.GC(context.Background(), GCOptions{Corrupt: true, AllUnreferenced: true}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != secret {
		t.Fatalf("gc deleted or changed a file through the symlinked refs/: %v", err)
	}
	if st, err := os.Lstat(c.refsDir()); err == nil && st.Mode()&os.ModeSymlink != 0 {
		t.Error("gc left the symlinked refs/ in place")
	}
}

// TestCommitRefusesPlantedLock: a FIFO or a symlink planted at an entry's lock path
// makes Commit fail at once (a FIFO used to block it), and GC clears the way.
func TestCommitRefusesPlantedLock(t *testing.T) {
	for _, tc := range []struct {
		name  string
		plant func(t *testing.T, path string)
	}{
		{"fifo", mkfifo},
		{"symlink", func(t *testing.T, path string) {
			symlink(t, filepath.Join(t.TempDir(), "elsewhere.lock"), path)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Open(t.TempDir())
			d := testDigest("faces")
			hex, _ := ParseDigest(d)
			tc.plant(t, c.lockPath(hex))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, _, _, err := c.Commit(ctx, d, sifBuilder("faces"))
			if !errors.Is(err, ErrNotRegular) || ctx.Err() != nil {
				t.Fatalf("commit with a planted lock: %v", err)
			}
			if _, err := c.GC(ctx, GCOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, _, built, err := c.Commit(ctx, d, sifBuilder("faces")); err != nil || !built {
				t.Fatalf("commit after gc: %v", err)
			}
		})
	}
}
