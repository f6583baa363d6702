package imagebuild_test

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/scivision-hpc/scv-hpc/internal/imagebuild"
	"github.com/scivision-hpc/scv-hpc/internal/registry"
)

type entry struct {
	typ      byte
	mode     int64
	uid      int
	link     string
	data     string
	mtimeSec int64
}

// entries reads a layer back into name → entry, in order.
func entries(t *testing.T, l v1.Layer) ([]string, map[string]entry) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var names []string
	m := map[string]entry{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		names = append(names, h.Name)
		m[h.Name] = entry{typ: h.Typeflag, mode: h.Mode, uid: h.Uid, link: h.Linkname, data: string(b), mtimeSec: h.ModTime.Unix()}
	}
	return names, m
}

func TestLayer(t *testing.T) {
	src := filepath.Join(t.TempDir(), "tool")
	if err := os.WriteFile(src, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := imagebuild.Layer([]imagebuild.File{
		{Path: "/usr/share/faces/facefinder", Data: []byte("cascade"), Mode: 0o600, UID: 1000},
		{Path: "usr/local/bin/tool", Src: src},
		{Path: "/usr/local/bin/tool-link", Link: "tool"},
		{Path: "/usr/local/bin/tool-hard", HardLink: "/usr/local/bin/tool"},
		{Path: "/data", Dir: true, Mode: 0o1777},
	})
	if err != nil {
		t.Fatal(err)
	}
	names, m := entries(t, l)
	want := []string{"data/", "usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/tool", "usr/local/bin/tool-hard",
		"usr/local/bin/tool-link", "usr/share/", "usr/share/faces/", "usr/share/faces/facefinder"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("entries %q, want %q", names, want)
	}
	checks := map[string]entry{
		"data/":                      {typ: tar.TypeDir, mode: 0o1777},
		"usr/":                       {typ: tar.TypeDir, mode: 0o755},
		"usr/local/bin/tool":         {typ: tar.TypeReg, mode: 0o755, data: "#!/bin/sh\necho hi\n"},
		"usr/local/bin/tool-hard":    {typ: tar.TypeLink, mode: 0o644, link: "usr/local/bin/tool"},
		"usr/local/bin/tool-link":    {typ: tar.TypeSymlink, mode: 0o777, link: "tool"},
		"usr/share/faces/facefinder": {typ: tar.TypeReg, mode: 0o600, uid: 1000, data: "cascade"},
	}
	for n, w := range checks {
		if got := m[n]; got != w {
			t.Errorf("%s: %+v, want %+v", n, got, w)
		}
	}
}

func TestLayerBadInput(t *testing.T) {
	tests := map[string][]imagebuild.File{
		"escape":        {{Path: "../etc/passwd", Data: []byte("x")}},
		"escape inside": {{Path: "/a/../../b", Data: []byte("x")}},
		"empty path":    {{Path: "", Data: []byte("x")}},
		"root":          {{Path: "/", Dir: true}},
		"duplicate":     {{Path: "/a", Data: []byte("x")}, {Path: "a", Data: []byte("y")}},
		"two kinds":     {{Path: "/a", Data: []byte("x"), Link: "b"}},
		"under a file":  {{Path: "/a", Data: []byte("x")}, {Path: "/a/b", Data: []byte("y")}},
		"dangling hard": {{Path: "/a", HardLink: "/nothing"}},
		"hard link ../": {{Path: "/a", HardLink: "../x"}},
	}
	for name, files := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := imagebuild.Layer(files); !errors.Is(err, imagebuild.ErrBadPath) {
				t.Errorf("Layer: %v, want ErrBadPath", err)
			}
		})
	}
}

func TestLayerFromDir(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "tmp"), 0o1777))
	must(os.Chmod(filepath.Join(root, "tmp"), 0o777|os.ModeSticky))
	must(os.WriteFile(filepath.Join(root, "usr/bin/python3.11"), []byte("ELF"), 0o755))
	must(os.Link(filepath.Join(root, "usr/bin/python3.11"), filepath.Join(root, "usr/bin/python3")))
	must(os.Symlink("python3", filepath.Join(root, "usr/bin/python")))
	must(os.Symlink("/etc/shadow", filepath.Join(root, "usr/bin/abs-link")))
	must(os.WriteFile(filepath.Join(root, "usr/bin/suid"), []byte("s"), 0o755))
	must(os.Chmod(filepath.Join(root, "usr/bin/suid"), 0o755|os.ModeSetuid))
	must(syscall.Mkfifo(filepath.Join(root, "tmp/fifo"), 0o644))

	var skipped []string
	l, err := imagebuild.LayerFromDir(root, imagebuild.WithOwner(0, 0), imagebuild.WithPrefix("/opt/rootfs"),
		imagebuild.WithSkipped(func(p, _ string) { skipped = append(skipped, filepath.Base(p)) }))
	must(err)
	names, m := entries(t, l)
	want := []string{"opt/", "opt/rootfs/", "opt/rootfs/tmp/", "opt/rootfs/usr/", "opt/rootfs/usr/bin/",
		"opt/rootfs/usr/bin/abs-link", "opt/rootfs/usr/bin/python", "opt/rootfs/usr/bin/python3",
		"opt/rootfs/usr/bin/python3.11", "opt/rootfs/usr/bin/suid"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("entries %q, want %q", names, want)
	}
	if e := m["opt/rootfs/usr/bin/python3"]; e.typ != tar.TypeReg || e.data != "ELF" {
		t.Errorf("first name of the hard-linked file: %+v, want the regular file", e)
	}
	if e := m["opt/rootfs/usr/bin/python3.11"]; e.typ != tar.TypeLink || e.link != "opt/rootfs/usr/bin/python3" {
		t.Errorf("second name of the hard-linked file: %+v, want a hard link to python3", e)
	}
	if e := m["opt/rootfs/usr/bin/abs-link"]; e.typ != tar.TypeSymlink || e.link != "/etc/shadow" {
		t.Errorf("absolute symlink %+v, want its target kept verbatim", e)
	}
	if e := m["opt/rootfs/usr/bin/suid"]; e.mode != 0o4755 {
		t.Errorf("setuid file mode %o, want 4755", e.mode)
	}
	if e := m["opt/rootfs/tmp/"]; e.mode != 0o1777 {
		t.Errorf("sticky dir mode %o, want 1777", e.mode)
	}
	for n, e := range m {
		if e.mtimeSec != 0 {
			t.Errorf("%s mtime %d, want the epoch", n, e.mtimeSec)
		}
	}
	if !reflect.DeepEqual(skipped, []string{"fifo"}) {
		t.Errorf("skipped %v, want [fifo]", skipped)
	}
}

func buildSample(t *testing.T, root string) v1.Image {
	t.Helper()
	l1, err := imagebuild.Layer([]imagebuild.File{{Path: "/usr/local/bin/faces", Data: []byte("binary"), Mode: 0o755}})
	if err != nil {
		t.Fatal(err)
	}
	l2, err := imagebuild.LayerFromDir(root)
	if err != nil {
		t.Fatal(err)
	}
	img, err := imagebuild.Image([]v1.Layer{l1, l2}, imagebuild.Config{
		Entrypoint: []string{"/usr/local/bin/faces"},
		Cmd:        []string{"-v"},
		Env:        []string{"FACES_CASCADE=/usr/share/faces/facefinder"},
		Labels:     map[string]string{"org.scivision.predict": "/usr/local/bin/faces", "org.opencontainers.image.title": "faces"},
		WorkingDir: "/srv/model",
	})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digest(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// TestDeterministic builds the same image twice, from two copies of the same tree made
// at different times: the digests must match; a one-byte change must not.
func TestDeterministic(t *testing.T) {
	mk := func(content string) string {
		root := t.TempDir()
		if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "etc/model.yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return root
	}
	a, b, c := buildSample(t, mk("name: faces\n")), buildSample(t, mk("name: faces\n")), buildSample(t, mk("name: facez\n"))
	if digest(t, a) != digest(t, b) {
		t.Errorf("same inputs, different digests: %s vs %s", digest(t, a), digest(t, b))
	}
	if digest(t, a) == digest(t, c) {
		t.Errorf("different content, same digest %s", digest(t, a))
	}
	cf, err := a.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || cf.Config.Labels["org.scivision.predict"] != "/usr/local/bin/faces" ||
		!reflect.DeepEqual(cf.Config.Entrypoint, []string{"/usr/local/bin/faces"}) || cf.Config.WorkingDir != "/srv/model" ||
		cf.Config.Env[0] != imagebuild.DefaultPath || cf.Config.Env[1] != "FACES_CASCADE=/usr/share/faces/facefinder" {
		t.Errorf("config %+v", cf.Config)
	}
	if mt, _ := a.MediaType(); !strings.Contains(string(mt), "oci") {
		t.Errorf("manifest media type %s, want OCI", mt)
	}
}

// TestWriteAndOpen writes the image every way it can leave the builder and opens it
// back through internal/registry: the digest must survive each route.
func TestWriteAndOpen(t *testing.T) {
	img := buildSample(t, t.TempDir())
	want := digest(t, img)
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")

	dir := t.TempDir()
	layoutDir := filepath.Join(dir, "layout")
	archive := filepath.Join(dir, "faces.tar")
	if err := imagebuild.WriteLayout(layoutDir, img, "1.0"); err != nil {
		t.Fatal(err)
	}
	// Writing the same tag again replaces, it does not add.
	if err := imagebuild.WriteLayout(layoutDir, img, "1.0"); err != nil {
		t.Fatal(err)
	}
	if err := imagebuild.WriteDockerArchive(archive, "example.org/scivision/faces:1.0", img); err != nil {
		t.Fatal(err)
	}
	if err := imagebuild.Push(context.Background(), img, host+"/scivision/faces:1.0", registry.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"oci-layout:" + layoutDir + ":1.0", "oci-layout:" + layoutDir, host + "/scivision/faces:1.0"} {
		got, src, err := registry.Open(context.Background(), ref, registry.Options{})
		if err != nil {
			t.Fatalf("Open(%s): %v", ref, err)
		}
		if src.Digest != want || digest(t, got) != want {
			t.Errorf("Open(%s) digest %s, want %s", ref, src.Digest, want)
		}
	}
	// A docker archive stores uncompressed layers: the manifest differs, the content not.
	got, _, err := registry.Open(context.Background(), "docker-archive:"+archive, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantCfg, _ := img.ConfigName()
	gotCfg, _ := got.ConfigName()
	if wantCfg != gotCfg {
		t.Errorf("docker archive config %s, want %s", gotCfg, wantCfg)
	}
	if err := imagebuild.Push(context.Background(), img, "oci-layout:"+dir, registry.Options{}); !errors.Is(err, registry.ErrBadReference) {
		t.Errorf("push to a layout reference: %v, want ErrBadReference", err)
	}
}

// TestLayerTempFile: a layer is kept in an unlinked file under TMPDIR, so nothing is
// left there, and it is still readable afterwards, as often as needed.
func TestLayerTempFile(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	l, err := imagebuild.Layer([]imagebuild.File{{Path: "/a", Data: []byte("content")}})
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("left in TMPDIR: %v", ents)
	}
	for range 2 {
		if _, m := entries(t, l); m["a"].data != "content" {
			t.Fatalf("layer reads back %+v", m)
		}
	}
}

// TestLayerTempFileFails: a TMPDIR where no file can be made gives ErrTempFile, naming
// the directory, for the command line to advise --tmpdir.
func TestLayerTempFileFails(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	t.Setenv("TMPDIR", missing)
	_, err := imagebuild.Layer([]imagebuild.File{{Path: "/a", Data: []byte("content")}})
	if !errors.Is(err, imagebuild.ErrTempFile) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Layer with TMPDIR %s: %v, want ErrTempFile naming it", missing, err)
	}
}
