package cache

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// damage is one way a cache goes wrong, and what Verify and GC make of it.
type damage struct {
	name   string
	apply  func(t *testing.T, c *Cache, digest, hex string)
	status Status
	detail string    // part of the Verify detail
	gc     GCOptions // the GC that repairs it
}

var damages = []damage{
	{"flipped byte in the SIF", func(t *testing.T, c *Cache, d, hex string) {
		flipByte(t, c.sifPath(hex), fileSize(c.sifPath(hex))/2)
	}, StatusCorrupt, "sha256", GCOptions{Corrupt: true}},
	{"truncated SIF", func(t *testing.T, c *Cache, d, hex string) {
		os.Truncate(c.sifPath(hex), 1000)
	}, StatusCorrupt, "bytes", GCOptions{}},
	{"not a SIF though the checksum matches", func(t *testing.T, c *Cache, d, hex string) {
		garbage := []byte(strings.Repeat("not a sif ", 500))
		os.WriteFile(c.sifPath(hex), garbage, 0o644)
		m, _ := c.readMeta(hex)
		m.SIFSHA256, m.Size, _ = hashReader(strings.NewReader(string(garbage)))
		b, _ := json.Marshal(m)
		os.WriteFile(c.metaPath(hex), b, 0o644)
	}, StatusCorrupt, "not a SIF", GCOptions{Corrupt: true}},
	{"garbage metadata", func(t *testing.T, c *Cache, d, hex string) {
		os.WriteFile(c.metaPath(hex), []byte("{"), 0o644)
	}, StatusCorrupt, "metadata", GCOptions{}},
	{"SIF without metadata", func(t *testing.T, c *Cache, d, hex string) {
		os.Remove(c.metaPath(hex))
	}, StatusOrphan, "without metadata", GCOptions{}},
	{"metadata without SIF", func(t *testing.T, c *Cache, d, hex string) {
		os.Remove(c.sifPath(hex))
	}, StatusIncomplete, "without its SIF", GCOptions{}},
	{"ref to a missing entry", func(t *testing.T, c *Cache, d, hex string) {
		c.SetRef("gone:1", testDigest("never committed"))
	}, StatusDanglingRef, "not cached", GCOptions{}},
	{"ref file that is not a digest", func(t *testing.T, c *Cache, d, hex string) {
		os.WriteFile(filepath.Join(c.refsDir(), "junk"), []byte("latest\n"), 0o644)
	}, StatusBadRef, "not one sha256 digest", GCOptions{}},
	{"temp SIF of a dead conversion", func(t *testing.T, c *Cache, d, hex string) {
		os.MkdirAll(c.tmpDir(), 0o755)
		os.WriteFile(filepath.Join(c.tmpDir(), hex+".deadbeef.sif"), []byte("half"), 0o644)
	}, StatusStaleTemp, "stopped", GCOptions{}},
	{"old temp of an interrupted metadata write", func(t *testing.T, c *Cache, d, hex string) {
		p := filepath.Join(c.sifDir(), "."+hex+".json.tmp-123")
		writeLock(t, p, []byte("{"), time.Hour)
	}, StatusStaleTemp, "interrupted", GCOptions{}},
	{"lock of a dead process", func(t *testing.T, c *Cache, d, hex string) {
		writeLock(t, c.lockPath(hex), lockJSON(thisHost(), deadPID(t), time.Now()), 0)
	}, StatusStaleLock, "gone", GCOptions{}},
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyAndGCRepairDamage(t *testing.T) {
	for _, dm := range damages {
		t.Run(dm.name, func(t *testing.T) {
			c := Open(t.TempDir())
			da, _ := commitTest(t, c, "a")
			db, pb := commitTest(t, c, "b")
			c.SetRef("b", db)
			hex, _ := ParseDigest(da)
			dm.apply(t, c, da, hex)

			res, err := c.Verify(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var found *VerifyResult
			for i, r := range res {
				switch {
				case r.Digest == db && r.Status != StatusOK:
					t.Errorf("the healthy entry is reported %+v", r)
				case r.Problem() && found == nil:
					found = &res[i]
				case r.Problem():
					t.Errorf("second problem reported: %+v", r)
				}
			}
			if found == nil || found.Status != dm.status || !strings.Contains(found.Detail, dm.detail) {
				t.Fatalf("verify = %+v; want %s with %q", res, dm.status, dm.detail)
			}

			dry, err := c.GC(context.Background(), GCOptions{DryRun: true, Corrupt: dm.gc.Corrupt})
			if err != nil || len(dry.Removed) != 1 {
				t.Fatalf("dry-run gc = %+v, %v", dry, err)
			}
			if again, _ := c.Verify(context.Background()); len(again) != len(res) {
				t.Fatalf("a dry run changed the cache")
			}
			rep, err := c.GC(context.Background(), dm.gc)
			if err != nil || len(rep.Removed) != 1 || len(rep.Errors) != 0 {
				t.Fatalf("gc = %+v, %v", rep, err)
			}
			after, _ := c.Verify(context.Background())
			for _, r := range after {
				if r.Problem() {
					t.Errorf("after gc: %+v", r)
				}
			}
			if p, _, err := c.Lookup(db); err != nil || p != pb {
				t.Errorf("gc hurt the healthy entry: %v", err)
			}
		})
	}
}

func TestGCSparesLiveConversions(t *testing.T) {
	c := Open(t.TempDir())
	d := testDigest("live")
	hex, _ := ParseDigest(d)
	started, finish := make(chan string), make(chan struct{})
	done := make(chan error)
	go func() {
		_, _, _, err := c.Commit(context.Background(), d, func(ctx context.Context, tmp string) (*Meta, error) {
			m, err := sifBuilder("live")(ctx, tmp)
			started <- tmp
			<-finish
			return m, err
		})
		done <- err
	}()
	tmp := <-started
	// Make the temp file and the lock look old: liveness comes from the owner, not age.
	writeLock(t, tmp, mustRead(t, tmp), time.Hour)
	res, err := c.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Status != StatusInProgress {
			t.Errorf("live conversion reported as %+v", r)
		}
	}
	if len(res) != 2 {
		t.Errorf("verify = %+v; want the lock and the temp file in progress", res)
	}
	rep, err := c.GC(context.Background(), GCOptions{AllUnreferenced: true, Corrupt: true})
	if err != nil || len(rep.Removed) != 0 {
		t.Fatalf("gc during a conversion removed %+v (%v)", rep.Removed, err)
	}
	close(finish)
	if err := <-done; err != nil {
		t.Fatalf("the conversion failed after gc: %v", err)
	}
	if _, err := os.Stat(c.sifPath(hex)); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGCAllUnreferenced(t *testing.T) {
	c := Open(t.TempDir())
	da, _ := commitTest(t, c, "kept")
	db, pb := commitTest(t, c, "dropped")
	if err := c.SetRef("kept:1", da); err != nil {
		t.Fatal(err)
	}
	rep, err := c.GC(context.Background(), GCOptions{})
	if err != nil || len(rep.Removed) != 0 {
		t.Fatalf("plain gc removed %+v (%v)", rep.Removed, err)
	}
	rep, err = c.GC(context.Background(), GCOptions{AllUnreferenced: true})
	if err != nil || len(rep.Removed) != 1 || rep.Removed[0].Digest != db || rep.Removed[0].Status != StatusUnreferenced {
		t.Fatalf("gc --all-unreferenced = %+v, %v", rep, err)
	}
	if rep.Bytes <= 0 {
		t.Errorf("bytes freed = %d", rep.Bytes)
	}
	if _, err := os.Stat(pb); !os.IsNotExist(err) {
		t.Errorf("unreferenced SIF still there")
	}
	if _, _, err := c.Lookup(da); err != nil {
		t.Errorf("referenced entry removed: %v", err)
	}
}

func TestGCRemovesRefsOfRemovedEntries(t *testing.T) {
	c := Open(t.TempDir())
	d, p := commitTest(t, c, "bad")
	for _, ref := range []string{"bad:1", "bad:latest"} {
		if err := c.SetRef(ref, d); err != nil {
			t.Fatal(err)
		}
	}
	flipByte(t, p, 100)
	rep, err := c.GC(context.Background(), GCOptions{Corrupt: true})
	if err != nil || len(rep.Removed) != 3 {
		t.Fatalf("gc = %+v, %v; want the entry and its two refs removed", rep, err)
	}
	if refs, _ := c.Refs(); len(refs) != 0 {
		t.Errorf("refs left: %v", refs)
	}
}
