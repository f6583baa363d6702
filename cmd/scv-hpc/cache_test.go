package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

type lsEntry struct {
	Digest    string   `json:"digest"`
	SIFSHA256 string   `json:"sif_sha256"`
	Refs      []string `json:"refs"`
	Path      string   `json:"path"`
}

func cacheLs(t *testing.T, c *binCLI) []lsEntry {
	t.Helper()
	var ents []lsEntry
	if err := json.Unmarshal([]byte(c.ok("cache", "ls", "--json")), &ents); err != nil {
		t.Fatal(err)
	}
	return ents
}

// TestCacheExportImport carries a cache to an empty one through a bundle: the same
// entries, byte-identical SIFs, refs that resolve offline; a damaged bundle imports
// nothing bad.
func TestCacheExportImport(t *testing.T) {
	reg := testenv.StartRegistryStoppable(t)
	testenv.Push(t, fakeFaces(t, "amd64", 0), reg.Host+"/scivision/faces:1.0")
	testenv.Push(t, fakeFaces(t, "amd64", 1000), reg.Host+"/lab/other:2")
	src := newCLI(t, facesCatalog(reg.Host))
	src.ok("pull", "faces", reg.Host+"/lab/other:2")
	before := cacheLs(t, src)
	if len(before) != 2 {
		t.Fatalf("cache ls: %+v", before)
	}

	bundle := filepath.Join(t.TempDir(), "bundle.tar")
	src.ok("cache", "export", bundle)
	dst := newCLI(t, facesCatalog(reg.Host))
	reg.Stop() // the import side has no network
	out := dst.ok("cache", "import", bundle)
	if strings.Count(out, "imported sha256:") != 2 {
		t.Fatalf("import:\n%s", out)
	}
	after := cacheLs(t, dst)
	if len(after) != len(before) {
		t.Fatalf("imported %d entries, exported %d", len(after), len(before))
	}
	for i := range before {
		b, a := before[i], after[i]
		if a.Digest != b.Digest || a.SIFSHA256 != b.SIFSHA256 || strings.Join(a.Refs, ",") != strings.Join(b.Refs, ",") {
			t.Errorf("entry %d: exported %+v, imported %+v", i, b, a)
		}
		if got, want := testenv.FileSHA256(t, a.Path), testenv.FileSHA256(t, b.Path); got != want || got != b.SIFSHA256 {
			t.Errorf("%s: imported SIF sha256 %s, exported %s, recorded %s", a.Digest, got, want, b.SIFSHA256)
		}
	}
	dst.ok("cache", "verify")
	if p := strings.TrimSpace(dst.ok("--offline", "cache", "path", "faces")); p != after[0].Path && p != after[1].Path {
		t.Errorf("--offline cache path faces = %s", p)
	}
	dst.ok("--offline", "pull", "faces")

	// A bundle for one model only, then a damaged copy of it.
	one := filepath.Join(t.TempDir(), "faces.tar")
	src.ok("cache", "export", one, "faces")
	data, err := os.ReadFile(one)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte("SIF_MAGIC"))
	if i < 0 {
		t.Fatal("no SIF in the bundle")
	}
	data[i+4096] ^= 0xff // inside the SIF, past its header
	bad := filepath.Join(t.TempDir(), "bad.tar")
	if err := os.WriteFile(bad, data, 0o644); err != nil {
		t.Fatal(err)
	}
	empty := newCLI(t, "")
	out, errs, code := empty.run("cache", "import", bad)
	if code != 1 || !strings.Contains(out+errs, "FAILED") {
		t.Errorf("import of a damaged bundle: exit %d\n%s\n%s", code, out, errs)
	}
	if ents := cacheLs(t, empty); len(ents) != 0 {
		t.Errorf("a damaged bundle left entries: %+v", ents)
	}
}

// TestCacheRmAndGC removes an entry by model name and cleans debris with gc.
func TestCacheRmAndGC(t *testing.T) {
	reg := testenv.StartRegistryStoppable(t)
	testenv.Push(t, fakeFaces(t, "amd64", 0), reg.Host+"/scivision/faces:1.0")
	c := newCLI(t, facesCatalog(reg.Host))
	c.ok("pull", "faces")
	sifPath := strings.TrimSpace(c.ok("cache", "path", "faces"))
	// Debris an interrupted conversion would leave.
	debris := filepath.Join(c.cache, "tmp", strings.Repeat("a", 64)+".dead.sif")
	if err := os.WriteFile(debris, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, code := c.run("cache", "verify"); code != 1 {
		t.Errorf("cache verify with debris: exit %d, want 1", code)
	}
	if out := c.ok("cache", "gc", "--dry-run"); !strings.Contains(out, "would remove") {
		t.Errorf("gc --dry-run:\n%s", out)
	}
	if _, err := os.Stat(debris); err != nil {
		t.Fatal("gc --dry-run removed the debris")
	}
	c.ok("cache", "gc")
	if _, err := os.Stat(debris); !os.IsNotExist(err) {
		t.Errorf("gc left %s", debris)
	}
	c.ok("cache", "verify")

	if out := c.ok("cache", "rm", "faces"); !strings.Contains(out, "removed faces") {
		t.Errorf("cache rm:\n%s", out)
	}
	if _, err := os.Stat(sifPath); !os.IsNotExist(err) {
		t.Errorf("cache rm left %s", sifPath)
	}
	if _, errs, code := c.run("cache", "path", "faces"); code != 1 || !strings.Contains(errs, "scv-hpc pull faces") {
		t.Errorf("cache path after rm: exit %d\n%s", code, errs)
	}
	if _, errs, code := c.run("cache", "rm", "faces"); code != 1 || !strings.Contains(errs, "faces") {
		t.Errorf("second cache rm: exit %d\n%s", code, errs)
	}
}

// TestPullReportsBitFlippedSIF: a cached SIF with one flipped byte is not "cached":
// pull says it is corrupt and what to run, pull --force converts it again.
func TestPullReportsBitFlippedSIF(t *testing.T) {
	reg := testenv.StartRegistryStoppable(t)
	testenv.Push(t, fakeFaces(t, "amd64", 0), reg.Host+"/scivision/faces:1.0")
	c := newCLI(t, facesCatalog(reg.Host))
	c.ok("pull", "faces")
	ents := cacheLs(t, c)
	if len(ents) != 1 {
		t.Fatalf("cache ls: %+v", ents)
	}
	sif := ents[0].Path
	data, err := os.ReadFile(sif)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-64] ^= 0x01
	if err := os.WriteFile(sif, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"pull", "faces"}, {"--offline", "pull", "faces"}} {
		out, errs, code := c.run(args...)
		if code != 1 || !strings.Contains(errs, "corrupt") || !strings.Contains(errs, "scv-hpc cache verify") ||
			!strings.Contains(errs, "scv-hpc pull --force faces") || strings.Contains(out, "cached") {
			t.Errorf("%v of a bit-flipped SIF: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, out, errs)
		}
	}
	if out := c.ok("pull", "--force", "faces"); !strings.Contains(out, "converted") {
		t.Errorf("pull --force:\n%s", out)
	}
	c.ok("cache", "verify")
	if out := c.ok("pull", "faces"); !strings.Contains(out, "cached") {
		t.Errorf("pull after the repair:\n%s", out)
	}
}

// TestRunShardReportsCorruptSIF: an array task does not hash the SIF up front (that
// would cost minutes per task), but when reading it fails the SIF is checked, and the
// error says it is corrupt instead of showing unsquashfs's output.
func TestRunShardReportsCorruptSIF(t *testing.T) {
	reg := testenv.StartRegistryStoppable(t)
	testenv.Push(t, fakeFaces(t, "amd64", 0), reg.Host+"/scivision/faces:1.0")
	c := newCLI(t, facesCatalog(reg.Host))
	c.ok("pull", "faces")
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "a.png"), []byte("png"), 0o644); err != nil {
		t.Fatal(err)
	}
	job := filepath.Join(t.TempDir(), "job")
	c.ok("submit", "faces", "--data", data, "--out", job, "--dry-run")
	sif := cacheLs(t, c)[0].Path
	b, err := os.ReadFile(sif)
	if err != nil {
		t.Fatal(err)
	}
	// Wreck the squashfs superblock: the header of the SIF still loads.
	i := bytes.Index(b, []byte("hsqs"))
	if i < 0 {
		t.Fatal("no squashfs in the SIF")
	}
	copy(b[i:], "XXXX")
	if err := os.WriteFile(sif, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, code := c.run("run-shard", job, "--index", "0", "--runtime", "builtin", "--workers", "1")
	if code != 1 || !strings.Contains(errs, "corrupt") || !strings.Contains(errs, "scv-hpc pull --force faces") {
		t.Errorf("run-shard over a corrupt SIF: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
}

// retarBundle rewrites a bundle's index.json through edit (the index carries no
// checksum of itself, so this is all a hostile sender needs).
func retarBundle(t *testing.T, in, out string, edit func(ix map[string]any)) {
	t.Helper()
	data, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tr, tw := tar.NewReader(bytes.NewReader(data)), tar.NewWriter(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		if h.Name == "index.json" {
			var ix map[string]any
			if err := json.Unmarshal(body, &ix); err != nil {
				t.Fatal(err)
			}
			edit(ix)
			body, _ = json.Marshal(ix)
		}
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	tw.Close()
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCacheImportRefusesRepointedRefs: a bundle whose index maps faces, faces@1.0 and
// the registry reference of faces to another image's digest imports that image but
// none of those refs, with or without --force; faces still resolves to faces offline.
func TestCacheImportRefusesRepointedRefs(t *testing.T) {
	reg := testenv.StartRegistryStoppable(t)
	facesRef, otherRef := reg.Host+"/scivision/faces:1.0", reg.Host+"/lab/other:2"
	testenv.Push(t, fakeFaces(t, "amd64", 0), facesRef)
	testenv.Push(t, fakeFaces(t, "amd64", 1000), otherRef)
	src := newCLI(t, facesCatalog(reg.Host))
	src.ok("pull", "faces", otherRef)
	var otherDigest string
	for _, e := range cacheLs(t, src) {
		if slices.Contains(e.Refs, otherRef) {
			otherDigest = e.Digest
		}
	}
	dir := t.TempDir()
	src.ok("cache", "export", filepath.Join(dir, "faces.tar"), "faces")
	src.ok("cache", "export", filepath.Join(dir, "other.tar"), otherRef)
	hostile := filepath.Join(dir, "hostile.tar")
	retarBundle(t, filepath.Join(dir, "other.tar"), hostile, func(ix map[string]any) {
		refs := ix["refs"].(map[string]any)
		for _, r := range []string{"faces", "faces@1.0", facesRef} {
			refs[r] = otherDigest
		}
	})
	reg.Stop()

	dst := newCLI(t, facesCatalog(reg.Host))
	dst.ok("cache", "import", filepath.Join(dir, "faces.tar"))
	facesSIF := strings.TrimSpace(dst.ok("--offline", "cache", "path", "faces"))
	for _, args := range [][]string{{"cache", "import", hostile}, {"cache", "import", "--force", hostile}} {
		out, errs, code := dst.run(args...)
		if code != 1 || strings.Count(out, "REFUSED") != 3 || !strings.Contains(errs, "refused") || !strings.Contains(out, "imported "+otherDigest) && !strings.Contains(out, "present  "+otherDigest) {
			t.Errorf("%v: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, out, errs)
		}
		for _, m := range []string{"faces", "faces@1.0", facesRef} {
			if p := strings.TrimSpace(dst.ok("--offline", "cache", "path", m)); p != facesSIF {
				t.Errorf("after %v, %s resolves to %s, not faces' %s", args, m, p, facesSIF)
			}
		}
	}
}

// TestCacheExportRefusesCacheFiles: 'cache export' given the path of a cached SIF (or
// any path in the cache) refuses, and the SIF stays intact.
func TestCacheExportRefusesCacheFiles(t *testing.T) {
	reg := testenv.StartRegistryStoppable(t)
	testenv.Push(t, fakeFaces(t, "amd64", 0), reg.Host+"/scivision/faces:1.0")
	c := newCLI(t, facesCatalog(reg.Host))
	c.ok("pull", "faces")
	ent := cacheLs(t, c)[0]
	link := filepath.Join(t.TempDir(), "cache-link")
	if err := os.Symlink(c.cache, link); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{ent.Path, filepath.Join(link, "sif", "sha256", filepath.Base(ent.Path)), filepath.Join(c.cache, "bundle.tar")} {
		stdout, errs, code := c.run("cache", "export", out, "faces")
		if code != 1 || !strings.Contains(errs, "inside the cache") {
			t.Errorf("export to %s: exit %d\n%s\n%s", out, code, stdout, errs)
		}
	}
	// Standard output redirected onto the SIF (appending, so the shell kept it whole).
	f, err := os.OpenFile(ent.Path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	cmd := c.command(t.Context(), "cache", "export", "-", "faces")
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = f, &errb
	if err := cmd.Run(); err == nil || !strings.Contains(errb.String(), "inside the cache") {
		t.Errorf("export - into the SIF: %v\n%s", err, errb.String())
	}
	f.Close()
	if got := testenv.FileSHA256(t, ent.Path); got != ent.SIFSHA256 {
		t.Fatalf("the cached SIF changed: sha256 %s, recorded %s", got, ent.SIFSHA256)
	}
	c.ok("cache", "verify")
}

// TestCacheHostileRefs: a FIFO and a symlink to /etc/passwd in refs/ neither block
// 'cache ls' and 'cache verify' nor leak the file; verify reports them as bad-ref and
// gc removes them (and only them).
func TestCacheHostileRefs(t *testing.T) {
	c := newCLI(t, "")
	refs := filepath.Join(c.cache, "refs")
	if err := os.MkdirAll(refs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(refs, "faces"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(refs, "plankton")); err != nil {
		t.Fatal(err)
	}
	c.ok("cache", "ls") // returns (a FIFO used to block it forever)
	out, errs, code := c.run("cache", "verify")
	if code != 1 || strings.Count(out, "bad-ref") != 2 || strings.Contains(out+errs, "root:") {
		t.Fatalf("verify: exit %d\n%s\n%s", code, out, errs)
	}
	c.ok("cache", "gc")
	c.ok("cache", "verify")
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Fatalf("gc followed the symlink: %v", err)
	}
}
