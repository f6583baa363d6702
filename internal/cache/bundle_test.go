package cache

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// populated returns a cache with three entries and refs to two of them.
func populated(t *testing.T) (*Cache, []string) {
	t.Helper()
	c := Open(t.TempDir())
	var ds []string
	for _, n := range []string{"faces", "plankton", "unreferenced"} {
		d, _ := commitTest(t, c, n)
		ds = append(ds, d)
	}
	for ref, d := range map[string]string{"faces": ds[0], testSource("faces"): ds[0], "plankton@2": ds[1]} {
		if err := c.SetRef(ref, d); err != nil {
			t.Fatal(err)
		}
	}
	return c, ds
}

func exportBytes(t *testing.T, c *Cache, digests []string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Export(context.Background(), &buf, digests); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestExportImportRoundTrip(t *testing.T) {
	src, ds := populated(t)
	bundle := exportBytes(t, src, nil)
	dst := Open(filepath.Join(t.TempDir(), "air-gapped"))
	rep, err := dst.Import(context.Background(), bytes.NewReader(bundle), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Imported) != 3 || len(rep.Present) != 0 || len(rep.Refs) != 3 {
		t.Fatalf("import report = %+v", rep)
	}
	for _, d := range ds {
		sp, sm, err := src.Lookup(d)
		if err != nil {
			t.Fatal(err)
		}
		dp, dm, err := dst.Lookup(d)
		if err != nil {
			t.Fatalf("imported %s: %v", d, err)
		}
		if !bytes.Equal(mustRead(t, sp), mustRead(t, dp)) || sm.SIFSHA256 != dm.SIFSHA256 {
			t.Errorf("%s: SIF differs after import", d)
		}
		if !reflect.DeepEqual(sm, dm) {
			t.Errorf("%s: metadata differs:\n%+v\n%+v", d, sm, dm)
		}
	}
	sr, _ := src.Refs()
	dr, _ := dst.Refs()
	if !reflect.DeepEqual(sr, dr) {
		t.Errorf("refs: %v, want %v", dr, sr)
	}
	res, err := dst.Verify(context.Background())
	if err != nil || len(res) != 3 {
		t.Fatalf("verify after import: %+v %v", res, err)
	}
	for _, r := range res {
		if r.Status != StatusOK {
			t.Errorf("after import: %+v", r)
		}
	}
	// Importing again changes nothing and skips the data.
	rep, err = dst.Import(context.Background(), bytes.NewReader(bundle), ImportOptions{})
	if err != nil || len(rep.Imported) != 0 || len(rep.Present) != 3 {
		t.Fatalf("second import = %+v, %v", rep, err)
	}
	// Export is deterministic for the same cache content.
	if again := exportBytes(t, src, nil); !bytes.Equal(bundleMembers(t, again)["sif/sha256/"+ds[0][7:]+".sif"], bundleMembers(t, bundle)["sif/sha256/"+ds[0][7:]+".sif"]) {
		t.Errorf("exports differ")
	}
}

func TestExportSubset(t *testing.T) {
	src, ds := populated(t)
	members := bundleMembers(t, exportBytes(t, src, []string{ds[1]}))
	ix, err := ParseBundleIndex(members[indexName])
	if err != nil {
		t.Fatal(err)
	}
	if len(ix.Entries) != 1 || ix.Entries[0].Digest != ds[1] || !reflect.DeepEqual(ix.Refs, map[string]string{"plankton@2": ds[1]}) {
		t.Fatalf("index = %+v", ix)
	}
	if len(members) != 3 {
		t.Errorf("members = %d, want index + 2 files", len(members))
	}
	if err := src.Export(context.Background(), io.Discard, []string{testDigest("absent")}); !errors.Is(err, ErrNotCached) {
		t.Errorf("export of an absent digest: %v", err)
	}
}

func TestExportRefusesCorruptEntry(t *testing.T) {
	src, ds := populated(t)
	p, _ := src.SIFPath(ds[2])
	flipByte(t, p, 200)
	err := src.Export(context.Background(), io.Discard, nil)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), ds[2]) {
		t.Fatalf("export of a corrupt cache = %v", err)
	}
}

// bundleMembers reads a tar into name → content, in order of names.
func bundleMembers(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name], _ = io.ReadAll(tr)
	}
}

// rewriteBundle copies a bundle, passing each member through edit (nil drops it).
func rewriteBundle(t *testing.T, b []byte, edit func(name string, data []byte) []byte) []byte {
	t.Helper()
	return copyBundle(t, b, edit, "", nil, nil)
}

// copyBundle copies a bundle, passing each member through edit (nil drops it; a nil
// edit keeps every member), writing extra (name → content) right after the member
// named after, and writing a member named in raw as those tar blocks instead (what
// tar.Writer cannot write).
func copyBundle(t *testing.T, b []byte, edit func(name string, data []byte) []byte, after string, extra map[string]string, raw map[string][]byte) []byte {
	t.Helper()
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	write := func(h *tar.Header, data []byte) {
		h.Size = int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if blocks, ok := raw[h.Name]; ok {
			tw.Flush()
			out.Write(blocks)
			continue
		}
		data, _ := io.ReadAll(tr)
		if edit != nil {
			if data = edit(h.Name, data); data == nil {
				continue
			}
		}
		write(h, data)
		if h.Name == after {
			for name, body := range extra {
				write(&tar.Header{Name: name, Mode: 0o644, Typeflag: tar.TypeReg}, []byte(body))
			}
		}
	}
	tw.Close()
	return out.Bytes()
}

// reindex rewrites the index and metadata of entry hex so that they match data: the
// bundle is then consistent, and only the SIF check can catch bad content.
func consistentGarbage(t *testing.T, bundle []byte, hex string, garbage []byte) []byte {
	t.Helper()
	sum, size, _ := hashReader(bytes.NewReader(garbage))
	members := bundleMembers(t, bundle)
	var m Meta
	json.Unmarshal(members["sif/sha256/"+hex+".json"], &m)
	m.SIFSHA256, m.Size = sum, size
	mb, _ := json.Marshal(m)
	msum, msize, _ := hashReader(bytes.NewReader(mb))
	var ix BundleIndex
	json.Unmarshal(members[indexName], &ix)
	for i := range ix.Entries {
		if ix.Entries[i].Digest == sha256Prefix+hex {
			ix.Entries[i].SIF.SHA256, ix.Entries[i].SIF.Size = sum, size
			ix.Entries[i].Meta.SHA256, ix.Entries[i].Meta.Size = msum, msize
		}
	}
	ib, _ := json.Marshal(ix)
	return rewriteBundle(t, bundle, func(name string, data []byte) []byte {
		switch name {
		case indexName:
			return ib
		case "sif/sha256/" + hex + ".json":
			return mb
		case "sif/sha256/" + hex + ".sif":
			return garbage
		}
		return data
	})
}

// withSparseMember copies bundle b with its member name replaced by a GNU sparse file
// of that name, all hole, of 1 TiB (testenv.SparseEntry).
func withSparseMember(t *testing.T, b []byte, name string) []byte {
	t.Helper()
	return copyBundle(t, b, nil, "", nil, map[string][]byte{name: testenv.SparseEntry(name, 1<<40)})
}

func TestImportRejectsBadBundles(t *testing.T) {
	src, ds := populated(t)
	good := exportBytes(t, src, nil)
	bad := ds[1]
	badHex := bad[7:]
	last := slices.Max(ds) // entries are exported in digest order
	tests := []struct {
		name    string
		bundle  func(t *testing.T) []byte
		failed  []string // entries reported bad
		fatal   bool     // the whole import fails before any entry
		message string
	}{
		{"flipped byte in a SIF", func(t *testing.T) []byte {
			return rewriteBundle(t, good, func(n string, d []byte) []byte {
				if n == "sif/sha256/"+badHex+".sif" {
					d[len(d)/2] ^= 1
				}
				return d
			})
		}, []string{bad}, false, "checksum mismatch"},
		{"consistent checksums of a file that is no SIF", func(t *testing.T) []byte {
			return consistentGarbage(t, good, badHex, bytes.Repeat([]byte("junk"), 4096))
		}, []string{bad}, false, "not a SIF"},
		{"tampered metadata", func(t *testing.T) []byte {
			return rewriteBundle(t, good, func(n string, d []byte) []byte {
				if n == "sif/sha256/"+badHex+".json" {
					return bytes.Replace(d, []byte("linux/amd64"), []byte("linux/arm64"), 1)
				}
				return d
			})
		}, []string{bad}, false, "metadata checksum"},
		{"missing SIF", func(t *testing.T) []byte {
			return rewriteBundle(t, good, func(n string, d []byte) []byte {
				if n == "sif/sha256/"+badHex+".sif" {
					return nil
				}
				return d
			})
		}, []string{bad}, false, "missing from the bundle"},
		{"hostile extra members", func(t *testing.T) []byte {
			return withExtraMembers(t, good, map[string]string{"../../escape": "owned", "/tmp/escape": "owned", "sif/sha256/" + badHex + ".sif.extra": "x"})
		}, nil, false, ""},
		{"a SIF that is a sparse file of 1 TiB", func(t *testing.T) []byte {
			return withSparseMember(t, good, "sif/sha256/"+badHex+".sif")
		}, []string{bad}, false, "sparse file"},
		{"no index", func(t *testing.T) []byte {
			return rewriteBundle(t, good, func(n string, d []byte) []byte {
				if n == indexName {
					return nil
				}
				return d
			})
		}, nil, true, "index.json"},
		{"not a tar at all", func(t *testing.T) []byte { return []byte("hello") }, nil, true, "not a bundle"},
		{"truncated in the middle of the last SIF", func(t *testing.T) []byte {
			return good[:len(good)-5000]
		}, []string{last}, true, "truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := Open(t.TempDir())
			rep, err := dst.Import(context.Background(), bytes.NewReader(tt.bundle(t)), ImportOptions{})
			if tt.message == "" {
				if err != nil {
					t.Fatalf("import: %v", err)
				}
			} else if !errors.Is(err, ErrBadBundle) || !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("import error = %v; want ErrBadBundle with %q", err, tt.message)
			}
			var failed []string
			for _, f := range rep.Failed {
				failed = append(failed, f.Digest)
				if !strings.Contains(err.Error(), f.Digest) {
					t.Errorf("the error does not name bad entry %s: %v", f.Digest, err)
				}
			}
			if !reflect.DeepEqual(failed, tt.failed) {
				t.Errorf("failed entries = %v, want %v", failed, tt.failed)
			}
			if !tt.fatal && len(rep.Imported) != 3-len(tt.failed) {
				t.Errorf("imported %v; the good entries should all be in", rep.Imported)
			}
			for _, d := range tt.failed {
				if _, _, err := dst.Lookup(d); !errors.Is(err, ErrNotCached) {
					t.Errorf("bad entry is in the cache: %v", err)
				}
			}
			// Nothing broken anywhere: every file left is a sound entry.
			res, _ := dst.Verify(context.Background())
			for _, r := range res {
				if r.Status != StatusOK {
					t.Errorf("after a bad import: %+v", r)
				}
			}
			if left, _ := readDirNames(dst.tmpDir()); len(left) != 0 {
				t.Errorf("tmp not empty: %v", left)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(dst.Dir), "escape")); err == nil {
				t.Errorf("a bundle member was written outside the cache")
			}
		})
	}
}

func FuzzParseBundleIndex(f *testing.F) {
	d := testDigest("x")
	hex := d[7:]
	good, _ := json.Marshal(BundleIndex{Format: BundleFormat, Entries: []BundleEntry{{
		Digest: d,
		Meta:   BundleFile{Name: "sif/sha256/" + hex + ".json", Size: 10, SHA256: hex},
		SIF:    BundleFile{Name: "sif/sha256/" + hex + ".sif", Size: 10, SHA256: hex},
	}}, Refs: map[string]string{"x": d}})
	f.Add(good)
	f.Add([]byte(`{"format":"scv-hpc-cache-bundle/1","entries":[{"digest":"sha256:../../x"}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ix, err := ParseBundleIndex(b)
		if err != nil {
			if !errors.Is(err, ErrBadBundle) {
				t.Fatalf("error without ErrBadBundle: %v", err)
			}
			return
		}
		for _, e := range ix.Entries {
			hex, err := ParseDigest(e.Digest)
			mn, sn := bundleNames(hex)
			if err != nil || e.Meta.Name != mn || e.SIF.Name != sn || e.SIF.Size < 0 {
				t.Fatalf("accepted entry %+v", e)
			}
		}
		for ref := range ix.Refs {
			if _, err := escapeRef(ref); err != nil {
				t.Fatalf("accepted ref %q", ref)
			}
		}
	})
}

// withExtraMembers inserts members the index does not list right after the index.
func withExtraMembers(t *testing.T, b []byte, extra map[string]string) []byte {
	t.Helper()
	return copyBundle(t, b, nil, indexName, extra, nil)
}
