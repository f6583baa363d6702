package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestCommitThenLookup(t *testing.T) {
	c := Open(t.TempDir())
	d := testDigest("model-a")
	if _, _, err := c.Lookup(d); !errors.Is(err, ErrNotCached) {
		t.Fatalf("lookup before commit: %v, want ErrNotCached", err)
	}
	p, m, built, err := c.Commit(context.Background(), d, sifBuilder("model-a"))
	if err != nil || !built {
		t.Fatalf("commit: built=%v err=%v", built, err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if m.SIFSHA256 != hex.EncodeToString(sum[:]) || m.Size != int64(len(b)) {
		t.Errorf("meta sha256/size = %s/%d, file has %x/%d", m.SIFSHA256, m.Size, sum, len(b))
	}
	if m.Digest != d || m.Created.IsZero() || !strings.HasPrefix(m.Tool, "scv-hpc ") || m.Source != testSource("model-a") {
		t.Errorf("meta not filled: %+v", m)
	}
	if err := checkSIF(p, m.Size); err != nil {
		t.Errorf("committed file is not a SIF: %v", err)
	}
	lp, lm, err := c.Lookup(d)
	if err != nil || lp != p || !reflect.DeepEqual(lm.Labels, m.Labels) || lm.SIFSHA256 != m.SIFSHA256 {
		t.Fatalf("lookup = %s %+v %v; want %s", lp, lm, err, p)
	}
	p2, _, built, err := c.Commit(context.Background(), d, func(context.Context, string) (*Meta, error) {
		t.Error("build called for a committed digest")
		return nil, errors.New("no")
	})
	if err != nil || built || p2 != p {
		t.Fatalf("second commit = %s built=%v err=%v", p2, built, err)
	}
	if left, _ := readDirNames(c.tmpDir()); len(left) != 0 {
		t.Errorf("tmp not empty: %v", left)
	}
	if left, _ := readDirNames(c.locksDir()); len(left) != 0 {
		t.Errorf("locks not released: %v", left)
	}
}

func TestLookupRejects(t *testing.T) {
	tests := []struct {
		name  string
		setup func(c *Cache, hex string)
		want  error
	}{
		{"absent", func(*Cache, string) {}, ErrNotCached},
		{"SIF without metadata", func(c *Cache, hex string) {
			os.Remove(c.metaPath(hex))
		}, ErrNotCached},
		{"metadata without SIF", func(c *Cache, hex string) {
			os.Remove(c.sifPath(hex))
		}, ErrCorrupt},
		{"truncated SIF", func(c *Cache, hex string) {
			os.Truncate(c.sifPath(hex), 100)
		}, ErrCorrupt},
		{"garbage metadata", func(c *Cache, hex string) {
			os.WriteFile(c.metaPath(hex), []byte("{not json"), 0o644)
		}, ErrCorrupt},
		{"metadata of another digest", func(c *Cache, hex string) {
			os.WriteFile(c.metaPath(hex), []byte(`{"digest":"`+testDigest("other")+`"}`), 0o644)
		}, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Open(t.TempDir())
			d := testDigest("x")
			if tt.name != "absent" {
				commitTest(t, c, "x")
			}
			hex, _ := ParseDigest(d)
			tt.setup(c, hex)
			p, m, err := c.Lookup(d)
			if !errors.Is(err, tt.want) || p != "" || m != nil {
				t.Fatalf("lookup = %q %v %v, want %v", p, m, err, tt.want)
			}
			if !strings.Contains(err.Error(), d) {
				t.Errorf("error does not name the digest: %v", err)
			}
		})
	}
}

func TestParseDigest(t *testing.T) {
	good := testDigest("a")
	for _, d := range []string{"", "sha256:", "sha256:abc", "sha512:" + good[7:], strings.ToUpper(good),
		good + "0", "sha256:" + strings.Repeat("g", 64), "sha256:../../../../etc/passwd" + strings.Repeat("a", 36)} {
		if _, err := ParseDigest(d); !errors.Is(err, ErrInvalidDigest) {
			t.Errorf("ParseDigest(%q) = %v, want ErrInvalidDigest", d, err)
		}
		if _, _, err := Open(t.TempDir()).Lookup(d); !errors.Is(err, ErrInvalidDigest) {
			t.Errorf("Lookup(%q) = %v, want ErrInvalidDigest", d, err)
		}
	}
	if h, err := ParseDigest(good); err != nil || h != good[7:] {
		t.Errorf("ParseDigest(%q) = %q, %v", good, h, err)
	}
}

func TestCommitFailureLeavesNothing(t *testing.T) {
	boom := errors.New("registry said no")
	tests := []struct {
		name  string
		build BuildFunc
		want  string
	}{
		{"build error", func(ctx context.Context, tmp string) (*Meta, error) {
			os.WriteFile(tmp, []byte("partial"), 0o644)
			return nil, boom
		}, "registry said no"},
		{"no file written", func(ctx context.Context, tmp string) (*Meta, error) {
			return &Meta{}, nil
		}, "wrote no SIF"},
		{"not a SIF", func(ctx context.Context, tmp string) (*Meta, error) {
			return &Meta{}, os.WriteFile(tmp, []byte(strings.Repeat("x", 8192)), 0o644)
		}, "invalid SIF"},
		{"truncated SIF", func(ctx context.Context, tmp string) (*Meta, error) {
			if err := writeSIF(tmp, make([]byte, 64<<10)); err != nil {
				return nil, err
			}
			return &Meta{}, os.Truncate(tmp, 8192)
		}, "truncated"},
		{"metadata of another digest", func(ctx context.Context, tmp string) (*Meta, error) {
			m, err := sifBuilder("y")(ctx, tmp)
			m.Digest = testDigest("other")
			return m, err
		}, "metadata of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Open(t.TempDir())
			d := testDigest("y")
			_, _, built, err := c.Commit(context.Background(), d, tt.build)
			if err == nil || built || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("commit: built=%v err=%v, want an error with %q", built, err, tt.want)
			}
			if _, _, err := c.Lookup(d); !errors.Is(err, ErrNotCached) {
				t.Errorf("lookup after a failed commit: %v", err)
			}
			for _, dir := range []string{c.tmpDir(), c.locksDir(), c.sifDir()} {
				if left, _ := readDirNames(dir); len(left) != 0 {
					t.Errorf("%s not empty: %v", dir, left)
				}
			}
			// And the next commit works.
			if _, _, built, err := c.Commit(context.Background(), d, sifBuilder("y")); err != nil || !built {
				t.Fatalf("commit after failure: built=%v err=%v", built, err)
			}
		})
	}
}

func TestCommitHonoursContext(t *testing.T) {
	c := Open(t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	d := testDigest("z")
	_, _, _, err := c.Commit(ctx, d, func(ctx context.Context, tmp string) (*Meta, error) {
		m, err := sifBuilder("z")(ctx, tmp)
		cancel()
		return m, err
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("commit cancelled during build: %v", err)
	}
	if _, _, err := c.Lookup(d); !errors.Is(err, ErrNotCached) {
		t.Fatalf("a cancelled commit left an entry: %v", err)
	}
}

func TestCommitRepairsCorruptEntry(t *testing.T) {
	c := Open(t.TempDir())
	d, p := commitTest(t, c, "w")
	if err := os.Truncate(p, 10); err != nil {
		t.Fatal(err)
	}
	_, m, built, err := c.Commit(context.Background(), d, sifBuilder("w"))
	if err != nil || !built {
		t.Fatalf("commit over a corrupt entry: built=%v err=%v", built, err)
	}
	if _, lm, err := c.Lookup(d); err != nil || lm.SIFSHA256 != m.SIFSHA256 {
		t.Fatalf("lookup after repair: %v", err)
	}
}

func TestRefs(t *testing.T) {
	c := Open(t.TempDir())
	d1, d2 := testDigest("one"), testDigest("two")
	refs := map[string]string{
		"faces":                               d1,
		"faces@1.0":                           d2,
		"ghcr.io/scivision/faces:latest":      d1,
		"localhost:5000/a/b@sha256:" + d1[7:]: d1,
		".hidden":                             d2,
		"..":                                  d1,
		"with space and %25 percent":          d2,
		"unicode-ÿ-模型":                        d1,
		strings.Repeat("r", maxRefFileName):   d2,
	}
	for ref, d := range refs {
		if err := c.SetRef(ref, d); err != nil {
			t.Fatalf("SetRef(%q): %v", ref, err)
		}
	}
	for ref, d := range refs {
		if got, err := c.ResolveRef(ref); err != nil || got != d {
			t.Errorf("ResolveRef(%q) = %q, %v; want %q", ref, got, err, d)
		}
	}
	all, err := c.Refs()
	if err != nil || !reflect.DeepEqual(all, refs) {
		t.Fatalf("Refs() = %v, %v; want %v", all, err, refs)
	}
	names, _ := readDirNames(c.refsDir())
	for _, n := range names {
		if strings.ContainsAny(n, "/") || n == "." || n == ".." || strings.HasPrefix(n, ".") {
			t.Errorf("unsafe refs file name %q", n)
		}
	}
	// Re-pointing replaces; removing removes.
	if err := c.SetRef("faces", d2); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.ResolveRef("faces"); got != d2 {
		t.Errorf("after re-pointing: %q", got)
	}
	if err := c.RemoveRef("faces"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ResolveRef("faces"); !errors.Is(err, ErrNotCached) {
		t.Errorf("resolve after remove: %v", err)
	}
	if err := c.RemoveRef("faces"); !errors.Is(err, ErrNotCached) {
		t.Errorf("second remove: %v", err)
	}
}

func TestRefsRejects(t *testing.T) {
	c := Open(t.TempDir())
	for _, ref := range []string{"", "a\nb", "nul\x00", strings.Repeat("/", 100)} {
		if err := c.SetRef(ref, testDigest("a")); !errors.Is(err, ErrInvalidRef) {
			t.Errorf("SetRef(%q) = %v, want ErrInvalidRef", ref, err)
		}
	}
	if err := c.SetRef("ok", "latest"); !errors.Is(err, ErrInvalidDigest) {
		t.Errorf("SetRef to a non-digest = %v", err)
	}
	if err := os.MkdirAll(c.refsDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.refsDir(), "bad"), []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ResolveRef("bad"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("resolve of a garbage ref file: %v", err)
	}
	if all, _ := c.Refs(); len(all) != 0 {
		t.Errorf("Refs() lists a garbage file: %v", all)
	}
}

func FuzzRefEscape(f *testing.F) {
	for _, s := range []string{"faces", "ghcr.io/a/b:1", ".x", "..", "%2E", "a%2Fb", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		name, err := escapeRef(ref)
		if err != nil {
			return
		}
		if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || strings.HasPrefix(name, ".") {
			t.Fatalf("escapeRef(%q) = unsafe %q", ref, name)
		}
		back, ok := unescapeRef(name)
		if !ok || back != ref {
			t.Fatalf("unescapeRef(escapeRef(%q)) = %q, %v", ref, back, ok)
		}
	})
}

func TestListAndRemove(t *testing.T) {
	c := Open(t.TempDir())
	da, _ := commitTest(t, c, "a")
	db, pb := commitTest(t, c, "b")
	for ref, d := range map[string]string{"a:1": da, "a:latest": da, "b": db} {
		if err := c.SetRef(ref, d); err != nil {
			t.Fatal(err)
		}
	}
	ents, err := c.List()
	if err != nil || len(ents) != 2 {
		t.Fatalf("List = %v, %v", ents, err)
	}
	for _, e := range ents {
		want := map[string][]string{da: {"a:1", "a:latest"}, db: {"b"}}[e.Digest]
		if !reflect.DeepEqual(e.Refs, want) || !filepath.IsAbs(e.Path) {
			t.Errorf("entry %s: refs %v path %s; want refs %v", e.Digest, e.Refs, e.Path, want)
		}
	}
	if ents[0].Digest > ents[1].Digest {
		t.Errorf("List not sorted by digest")
	}
	if err := c.Remove(db); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pb); !os.IsNotExist(err) {
		t.Errorf("SIF still there after Remove: %v", err)
	}
	if _, err := c.ResolveRef("b"); !errors.Is(err, ErrNotCached) {
		t.Errorf("ref to a removed entry still resolves: %v", err)
	}
	if got, _ := c.ResolveRef("a:1"); got != da {
		t.Errorf("Remove of b touched a's ref")
	}
	if err := c.Remove(db); !errors.Is(err, ErrNotCached) {
		t.Errorf("second Remove = %v", err)
	}
}

func TestRemoveRefusesLiveConversion(t *testing.T) {
	c := Open(t.TempDir())
	d, _ := commitTest(t, c, "busy")
	hex, _ := ParseDigest(d)
	l, err := c.acquire(context.Background(), c.lockPath(hex), d)
	if err != nil {
		t.Fatal(err)
	}
	defer l.release()
	if err := c.Remove(d); err == nil || !strings.Contains(err.Error(), "conversion") {
		t.Fatalf("Remove under a live lock = %v", err)
	}
	if _, _, err := c.Lookup(d); err != nil {
		t.Fatalf("entry damaged: %v", err)
	}
}
