package cache

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseRefFile: whatever a refs/ file holds, only a digest comes out, and the error
// never quotes the content (it may be a copy of a secret file).
func FuzzParseRefFile(f *testing.F) {
	for _, s := range []string{testDigest("a") + "\n", testDigest("a"), " " + testDigest("a") + " \n\n", "latest\n", secret, "", "sha256:"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := parseRefFile(b)
		if err != nil {
			if len(b) > 8 && bytes.Contains([]byte(err.Error()), b) {
				t.Fatalf("the error quotes the content: %v", err)
			}
			return
		}
		if _, err := ParseDigest(d); err != nil {
			t.Fatalf("parseRefFile(%q) = %q, not a digest", b, d)
		}
	})
}

// FuzzReadProvenance: any file given as a SIF (a bundle's SIF is untrusted) yields a
// provenance, none, or an error; never a panic or a huge read.
func FuzzReadProvenance(f *testing.F) {
	dir := f.TempDir()
	good := filepath.Join(dir, "good.sif")
	if err := writeSIF(good, []byte("x"), Provenance{Ref: "ghcr.io/x/a:1", Digest: testDigest("a")}); err != nil {
		f.Fatal(err)
	}
	b, err := os.ReadFile(good)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add([]byte("SIF_MAGIC"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "x.sif")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		readProvenance(p)
	})
}

// FuzzRefAgrees: refAgrees never panics on hostile refs and metadata, and a ref never
// agrees with an entry that records nothing about itself.
func FuzzRefAgrees(f *testing.F) {
	for _, s := range []string{"faces", "faces@1.0", "ghcr.io/x/faces:1", "ghcr.io/x/faces@" + testDigest("a"), "oci-layout:/x:1", "docker-archive:/a.tar", "a:b:c", "@", "/"} {
		f.Add(s, "ghcr.io/x/faces:1", "faces@1.0")
	}
	f.Fuzz(func(t *testing.T, ref, source, committed string) {
		d := testDigest("a")
		p := &Provenance{Ref: source, Digest: d}
		refAgrees(ref, d, p, &Meta{Source: source, Refs: strings.Split(committed, ",")}, func(id string) (string, bool) { return source, id == ref })
		if why := refAgrees(ref, d, nil, &Meta{}, nil); why == "" {
			t.Fatalf("ref %q agrees with an entry that records nothing", ref)
		}
	})
}
