package cache

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestReadsCreateNothing runs every read operation on a cache with all kinds of
// debris (which Verify must report, not repair) and checks that no file or directory
// was created, changed or removed.
func TestReadsCreateNothing(t *testing.T) {
	c := Open(t.TempDir())
	d, _ := commitTest(t, c, "ro")
	if err := c.SetRef("ro:1", d); err != nil {
		t.Fatal(err)
	}
	orphanD, _ := commitTest(t, c, "orphan")
	hex, _ := ParseDigest(orphanD)
	os.Remove(c.metaPath(hex))
	writeLock(t, c.lockPath(hex), lockJSON(thisHost(), deadPID(t), time.Now()), time.Hour)
	os.WriteFile(filepath.Join(c.tmpDir(), hex+".cafe.sif"), []byte("half"), 0o644)
	c.SetRef("dangling", testDigest("nowhere"))

	absent := Open(filepath.Join(t.TempDir(), "never-created"))
	before := snapshot(t, c.Dir)
	for _, cc := range []*Cache{c, absent} {
		if _, _, err := cc.Lookup(d); err != nil && cc == c {
			t.Fatal(err)
		}
		cc.Lookup(testDigest("absent"))
		cc.Lookup(orphanD)
		cc.ResolveRef("ro:1")
		cc.ResolveRef("not-there")
		cc.Refs()
		cc.List()
		res, err := cc.Verify(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if cc == c && len(res) < 4 {
			t.Errorf("verify found %d results, want the entry and the debris", len(res))
		}
		cc.GC(context.Background(), GCOptions{DryRun: true, AllUnreferenced: true, Corrupt: true})
	}
	if after := snapshot(t, c.Dir); !reflect.DeepEqual(before, after) {
		t.Fatalf("reads changed the cache:\nbefore %v\nafter  %v", before, after)
	}
	if _, err := os.Stat(absent.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("reading an absent cache created it: %v", err)
	}
}

// TestReadOnlyMount mounts a populated cache read-only (a bind mount in a private
// mount namespace, as compute nodes see a shared cache) and runs the reads there;
// a commit must fail with a message that says the cache is read-only.
func TestReadOnlyMount(t *testing.T) {
	needRootNamespaces(t)
	c := Open(t.TempDir())
	d, _ := commitTest(t, c, "mounted")
	if err := c.SetRef("mounted", d); err != nil {
		t.Fatal(err)
	}
	other := Open(t.TempDir())
	commitTest(t, other, "from elsewhere")
	bundle := filepath.Join(t.TempDir(), "bundle.tar")
	if err := os.WriteFile(bundle, exportBytes(t, other, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, c.Dir)
	cmd := exec.Command("unshare", "-m", "--propagation", "private", os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "SCV_CACHE_HELPER=readonly", "CACHE_DIR="+c.Dir, "DIGEST="+d, "BUNDLE="+bundle)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("read-only helper: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "is read-only, cannot") || !strings.Contains(string(out), c.Dir) {
		t.Errorf("commit error on a read-only cache is unclear: %s", out)
	}
	if after := snapshot(t, c.Dir); !reflect.DeepEqual(before, after) {
		t.Fatalf("the cache changed under a read-only mount:\n%v\n%v", before, after)
	}
}

// TestDiskFull commits into a 1 MiB tmpfs a SIF that does not fit: the error must
// say "no space left on device" and name the cache, and nothing may be left.
func TestDiskFull(t *testing.T) {
	needRootNamespaces(t)
	dir := t.TempDir()
	d := testDigest("too big")
	cmd := exec.Command("unshare", "-m", "--propagation", "private", os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "SCV_CACHE_HELPER=enospc", "CACHE_DIR="+dir, "DIGEST="+d)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("disk-full helper: %v\n%s", err, out)
	}
	for _, want := range []string{"cache " + dir + ": no space left on device while converting " + d, "left in tmp: 0"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
