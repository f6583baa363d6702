package cache

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteList(t *testing.T) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local)
	d := "sha256:" + strings.Repeat("ab", 32)
	var b strings.Builder
	err := WriteList(&b, []Entry{
		{Meta: Meta{Digest: d, Size: 3 << 20, Platform: "linux/amd64", Created: created, Refs: []string{"faces", "r/faces:1"}}},
		{Meta: Meta{Digest: "sha256:12", Size: 10, Created: created}},
	}, []BlobInfo{{Size: 1 << 20}, {Size: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	want := `DIGEST               SIZE     PLATFORM     CREATED              REFS
sha256:abababababab  3.0 MiB  linux/amd64  2026-01-02 03:04:05  faces, r/faces:1
sha256:12            10 B     -            2026-01-02 03:04:05  -
layer blobs: 2, 2.0 MiB (shared by conversions; cache gc drops unused ones)
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestWriteVerifyAndProblems(t *testing.T) {
	rs := []VerifyResult{
		{Status: StatusOK, Digest: "sha256:1"},
		{Status: StatusInProgress, Digest: "sha256:2", Detail: "converting"},
		{Status: StatusDanglingRef, Ref: "faces", Digest: "sha256:3", Detail: "no entry"},
		{Status: StatusStaleTemp, Path: "/c/tmp/x"},
	}
	var b strings.Builder
	if err := WriteVerify(&b, rs); err != nil {
		t.Fatal(err)
	}
	want := `STATUS        DIGEST/REF  DETAIL
ok            sha256:1    -
in-progress   sha256:2    converting
dangling-ref  faces       no entry
stale-tmp     /c/tmp/x    -
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	if n := Problems(rs); n != 2 {
		t.Errorf("Problems = %d, want 2", n)
	}
}

func TestReportsText(t *testing.T) {
	gc := GCReport{Removed: []VerifyResult{{Status: StatusStaleTemp, Path: "/c/tmp/x"}}, Bytes: 2048}
	for dry, want := range map[bool]string{
		false: "removed stale-tmp /c/tmp/x\nremoved 1 item(s), 2.0 KiB\n",
		true:  "would remove stale-tmp /c/tmp/x\nwould remove 1 item(s), 2.0 KiB\n",
	} {
		var b strings.Builder
		if err := gc.WriteText(&b, dry); err != nil || b.String() != want {
			t.Errorf("GCReport.WriteText(dry %v) = %q, %v; want %q", dry, b.String(), err, want)
		}
	}
	imp := ImportReport{Imported: []string{"sha256:1"}, Present: []string{"sha256:2"}, Failed: []ImportFailure{{"sha256:3", "bad"}},
		Refs: []string{"a", "b"}, Moved: []MovedRef{{"c", "sha256:4", "sha256:1"}}, Refused: []RefusedRef{{Ref: "d", Digest: "sha256:1", Reason: "disagrees"}}}
	want := `imported sha256:1
present  sha256:2
FAILED   sha256:3: bad
refs     a, b
moved    c: sha256:4 -> sha256:1
REFUSED  d -> sha256:1: disagrees
`
	var b strings.Builder
	if err := imp.WriteText(&b); err != nil || b.String() != want {
		t.Errorf("ImportReport.WriteText = %q, %v; want %q", b.String(), err, want)
	}
}

// TestGCAll: an unused blob older than the age given is removed and reported with
// its size; a fresh one stays; a dry run removes nothing.
func TestGCAll(t *testing.T) {
	c := Open(t.TempDir())
	old, fresh := testDigest("old"), testDigest("fresh")
	for _, d := range []string{old, fresh} {
		p, err := c.BlobPath(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("12345"), 0o644); err != nil {
			t.Fatal(err)
		}
		if d == old {
			if err := os.Chtimes(p, time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, dry := range []bool{true, false} {
		rep, err := c.GCAll(t.Context(), GCOptions{DryRun: dry}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Removed) != 1 || rep.Removed[0].Status != StatusUnusedBlob || rep.Removed[0].Digest != old || rep.Bytes != 5 {
			t.Errorf("GCAll(dry %v) = %+v, want the old blob, 5 bytes", dry, rep)
		}
		p, _ := c.BlobPath(old)
		if _, err := os.Stat(p); (err == nil) != dry {
			t.Errorf("GCAll(dry %v): old blob there: %v", dry, err)
		}
	}
	if bs, _ := c.Blobs(); len(bs) != 1 || bs[0].Digest != fresh {
		t.Errorf("blobs left %+v, want the fresh one", bs)
	}
}
