package cache

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

// tamper rewrites a bundle's index and metadata through edit and keeps the bundle
// consistent (the index's checksums of the metadata are recomputed): only checks
// against the SIFs themselves can catch what edit did.
func tamper(t *testing.T, bundle []byte, edit func(ix *BundleIndex, metas map[string]*Meta)) []byte {
	t.Helper()
	members := bundleMembers(t, bundle)
	var ix BundleIndex
	if err := json.Unmarshal(members[indexName], &ix); err != nil {
		t.Fatal(err)
	}
	metas := map[string]*Meta{}
	for _, e := range ix.Entries {
		var m Meta
		if err := json.Unmarshal(members[e.Meta.Name], &m); err != nil {
			t.Fatal(err)
		}
		metas[e.Digest] = &m
	}
	edit(&ix, metas)
	newMeta := map[string][]byte{}
	for i, e := range ix.Entries {
		mb, _ := json.Marshal(metas[e.Digest])
		sum, size, _ := hashReader(bytes.NewReader(mb))
		ix.Entries[i].Meta.SHA256, ix.Entries[i].Meta.Size = sum, size
		newMeta[e.Meta.Name] = mb
	}
	ib, _ := json.Marshal(ix)
	return rewriteBundle(t, bundle, func(name string, data []byte) []byte {
		if name == indexName {
			return ib
		}
		if mb, ok := newMeta[name]; ok {
			return mb
		}
		return data
	})
}

// hijackRefs are the refs a hostile bundle points at another image: the catalog name,
// the catalog ID and the image reference of faces.
var hijackRefs = []string{"faces", "faces@2", testSource("faces")}

func refusedRefs(rep ImportReport) []string {
	var out []string
	for _, r := range rep.Refused {
		out = append(out, r.Ref)
	}
	slices.Sort(out)
	return out
}

// TestImportRefusesHijackedRefs imports real tampered bundles into a cache that has
// faces and into an empty one. No ref of faces ever ends up at another digest, each
// refusal names the ref, the digest and why, and the error matches ErrRefRefused.
func TestImportRefusesHijackedRefs(t *testing.T) {
	src := Open(t.TempDir())
	faces, _ := commitTest(t, src, "faces")
	other, _ := commitTest(t, src, "other")
	for _, ref := range []string{"other", testSource("other")} {
		if err := src.SetRef(ref, other); err != nil {
			t.Fatal(err)
		}
	}
	onlyOther := exportBytes(t, src, []string{other})
	catalog := func(id string) (string, bool) {
		switch strings.SplitN(id, "@", 2)[0] {
		case "faces":
			return testSource("faces"), true
		case "other":
			return testSource("other"), true
		}
		return "", false
	}

	tests := []struct {
		name    string
		bundle  []byte
		opts    ImportOptions
		refused []string // refs refused
		reason  string   // part of every refusal
	}{
		{"index points faces at another image", tamper(t, onlyOther, func(ix *BundleIndex, _ map[string]*Meta) {
			for _, r := range hijackRefs {
				ix.Refs[r] = other
			}
		}), ImportOptions{}, hijackRefs, "other"},
		{"index and metadata both claim faces", tamper(t, onlyOther, func(ix *BundleIndex, metas map[string]*Meta) {
			for _, r := range hijackRefs {
				ix.Refs[r] = other
			}
			metas[other].Refs = append(metas[other].Refs, hijackRefs...)
		}), ImportOptions{ImageOf: catalog}, hijackRefs, "other"},
		{"force does not override provenance", tamper(t, onlyOther, func(ix *BundleIndex, _ map[string]*Meta) {
			for _, r := range hijackRefs {
				ix.Refs[r] = other
			}
		}), ImportOptions{Force: true, ImageOf: catalog}, hijackRefs, "other"},
		{"tag of faces pinned to another digest", tamper(t, onlyOther, func(ix *BundleIndex, _ map[string]*Meta) {
			ix.Refs["ghcr.io/x/other@"+faces] = other
		}), ImportOptions{}, []string{"ghcr.io/x/other@" + faces}, "pins another digest"},
	}
	for _, tt := range tests {
		for _, start := range []string{"empty cache", "cache with faces"} {
			t.Run(tt.name+"/"+start, func(t *testing.T) {
				dst := Open(t.TempDir())
				if start == "cache with faces" {
					commitTest(t, dst, "faces")
					for _, r := range hijackRefs {
						if err := dst.SetRef(r, faces); err != nil {
							t.Fatal(err)
						}
					}
				}
				rep, err := dst.Import(context.Background(), bytes.NewReader(tt.bundle), tt.opts)
				if !errors.Is(err, ErrRefRefused) || errors.Is(err, ErrBadBundle) {
					t.Fatalf("import = %+v, %v; want ErrRefRefused only", rep, err)
				}
				if got := refusedRefs(rep); !slices.Equal(got, sorted(tt.refused)) {
					t.Errorf("refused %q, want %q", got, sorted(tt.refused))
				}
				for _, r := range rep.Refused {
					if r.Digest != other || !strings.Contains(r.Reason, tt.reason) || !strings.Contains(err.Error(), r.Ref) {
						t.Errorf("refusal %+v (error %v) does not say why", r, err)
					}
				}
				if len(rep.Moved) != 0 || !slices.Equal(rep.Imported, []string{other}) {
					t.Errorf("report %+v", rep)
				}
				for _, r := range hijackRefs {
					d, err := dst.ResolveRef(r)
					if start == "empty cache" && !errors.Is(err, ErrNotCached) || start != "empty cache" && d != faces {
						t.Errorf("after import %s = %s, %v", r, d, err)
					}
				}
				if d, err := dst.ResolveRef(testSource("other")); err != nil || d != other {
					t.Errorf("the sound ref of other: %s, %v", d, err)
				}
			})
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestImportMovesRefsOnlyWhenForced: a genuine newer image of faces whose bundle maps
// "faces" to it moves the ref only with Force, and the report names both digests.
func TestImportMovesRefsOnlyWhenForced(t *testing.T) {
	dst := Open(t.TempDir())
	old, _ := commitTest(t, dst, "faces")
	if err := dst.SetRef("faces", old); err != nil {
		t.Fatal(err)
	}
	// faces, version 3: same repository, new digest, committed for "faces" too.
	src := Open(t.TempDir())
	newer := testDigest("faces v3")
	_, _, _, err := src.Commit(context.Background(), newer, func(ctx context.Context, tmp string) (*Meta, error) {
		if err := writeSIF(tmp, []byte("v3"), Provenance{Ref: "ghcr.io/x/faces:3", Digest: newer}); err != nil {
			return nil, err
		}
		return &Meta{Source: "ghcr.io/x/faces:3", Refs: []string{"ghcr.io/x/faces:3", "faces@3", "faces"}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"faces", "ghcr.io/x/faces:latest"} {
		src.SetRef(r, newer)
	}
	bundle := exportBytes(t, src, nil)

	rep, err := dst.Import(context.Background(), bytes.NewReader(bundle), ImportOptions{})
	if !errors.Is(err, ErrRefRefused) || len(rep.Refused) != 1 || rep.Refused[0].Ref != "faces" || rep.Refused[0].Current != old ||
		!strings.Contains(rep.Refused[0].Reason, old) {
		t.Fatalf("import without force = %+v, %v", rep, err)
	}
	if d, _ := dst.ResolveRef("faces"); d != old {
		t.Fatalf("faces moved to %s without force", d)
	}
	if d, _ := dst.ResolveRef("ghcr.io/x/faces:latest"); d != newer {
		t.Errorf("a new tag of the same repository was not set: %s", d)
	}

	rep, err = dst.Import(context.Background(), bytes.NewReader(bundle), ImportOptions{Force: true})
	if err != nil || len(rep.Moved) != 1 || rep.Moved[0] != (MovedRef{Ref: "faces", From: old, To: newer}) {
		t.Fatalf("import with force = %+v, %v", rep, err)
	}
	if d, _ := dst.ResolveRef("faces"); d != newer {
		t.Errorf("faces = %s after a forced import", d)
	}
}

// TestImportRefusesSIFOfAnotherImage: an entry filed under one digest whose SIF says
// it is another image is not imported at all.
func TestImportRefusesSIFOfAnotherImage(t *testing.T) {
	src := Open(t.TempDir())
	claimed := testDigest("faces")
	_, _, _, err := src.Commit(context.Background(), claimed, func(ctx context.Context, tmp string) (*Meta, error) {
		return &Meta{Source: testSource("faces")}, writeSIF(tmp, []byte("evil"), Provenance{Ref: "evil.example/x:1", Digest: testDigest("evil")})
	})
	if err != nil {
		t.Fatal(err)
	}
	src.SetRef("faces", claimed)
	dst := Open(t.TempDir())
	rep, err := dst.Import(context.Background(), bytes.NewReader(exportBytes(t, src, nil)), ImportOptions{})
	if !errors.Is(err, ErrBadBundle) || len(rep.Failed) != 1 || !strings.Contains(rep.Failed[0].Err, "not "+claimed) {
		t.Fatalf("import = %+v, %v", rep, err)
	}
	if _, _, err := dst.Lookup(claimed); !errors.Is(err, ErrNotCached) {
		t.Errorf("the entry was committed: %v", err)
	}
	if _, err := dst.ResolveRef("faces"); !errors.Is(err, ErrNotCached) {
		t.Errorf("its ref was set: %v", err)
	}
}

// TestImportForgedSIFHeader: a bundle whose SIF header claims 2^40 descriptors (the sif
// package would allocate them all) fails that entry cleanly.
func TestImportForgedSIFHeader(t *testing.T) {
	src, ds := populated(t)
	hex, _ := ParseDigest(ds[0])
	p, _, err := src.Lookup(ds[0])
	if err != nil {
		t.Fatal(err)
	}
	forged := mustRead(t, p)
	binary.LittleEndian.PutUint64(forged[88:], 1<<40) // the header's DescriptorsTotal
	bundle := consistentGarbage(t, exportBytes(t, src, ds[:1]), hex, forged)
	dst := Open(t.TempDir())
	rep, err := dst.Import(context.Background(), bytes.NewReader(bundle), ImportOptions{})
	if !errors.Is(err, ErrBadBundle) || len(rep.Failed) != 1 || !strings.Contains(rep.Failed[0].Err, "descriptors") {
		t.Fatalf("import = %+v, %v", rep, err)
	}
	if err := checkSIF(p, int64(len(forged))); err != nil {
		t.Errorf("the sound SIF: %v", err)
	}
}
