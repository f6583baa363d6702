package convert

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/rs/zerolog"
)

// ent is one tar entry of a test layer.
type ent struct {
	name         string
	typ          byte
	mode         int64
	body         string
	link         string
	uid, gid     int
	major, minor int64
}

func file(name, body string, mode int64) ent {
	return ent{name: name, typ: tar.TypeReg, mode: mode, body: body}
}
func dir(name string, mode int64) ent { return ent{name: name, typ: tar.TypeDir, mode: mode} }
func symlink(name, target string) ent {
	return ent{name: name, typ: tar.TypeSymlink, mode: 0o777, link: target}
}
func hardlink(name, target string) ent {
	return ent{name: name, typ: tar.TypeLink, mode: 0o644, link: target}
}
func whiteout(name string) ent      { return ent{name: name, typ: tar.TypeReg, mode: 0o644} }
func owned(e ent, uid, gid int) ent { e.uid, e.gid = uid, gid; return e }
func chardev(name string, maj int64) ent {
	return ent{name: name, typ: tar.TypeChar, mode: 0o666, major: maj}
}

// tarOf writes entries as an uncompressed tar stream.
func tarOf(t testing.TB, ents []ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(1700000000, 0)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link,
			Uid: e.uid, Gid: e.gid, ModTime: mtime, Devmajor: e.major, Devminor: e.minor, Format: tar.FormatPAX}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %s: %v", e.name, err)
		}
		if e.typ == tar.TypeReg {
			if _, err := io.WriteString(tw, e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// layerOf makes a gzip-compressed OCI layer from entries.
func layerOf(t testing.TB, ents []ent) v1.Layer {
	t.Helper()
	data := tarOf(t, ents)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	if err != nil {
		t.Fatalf("layer: %v", err)
	}
	return l
}

// imageOf stacks layers (lowest first) into an image with cfg.
func imageOf(t testing.TB, cfg v1.Config, layers ...[]ent) v1.Image {
	t.Helper()
	img := empty.Image
	for _, ents := range layers {
		var err error
		img, err = mutate.AppendLayers(img, layerOf(t, ents))
		if err != nil {
			t.Fatalf("append layer: %v", err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config = "linux", "amd64", cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return img
}

// sandbox is a temporary directory holding the rootfs and, next to it, a
// sentinel directory that hostile layers aim at.
type sandbox struct {
	dir, root, sentinel string
}

func newSandbox(t testing.TB) sandbox {
	t.Helper()
	d := t.TempDir()
	s := sandbox{dir: d, root: filepath.Join(d, "rootfs"), sentinel: filepath.Join(d, "sentinel")}
	for _, p := range []string{s.root, s.sentinel} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// assertConfined fails unless the sentinel is still empty and the sandbox
// holds nothing but the rootfs and the sentinel.
func (s sandbox) assertConfined(t testing.TB) {
	t.Helper()
	ents, err := os.ReadDir(s.sentinel)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("written outside the rootfs: %s", filepath.Join(s.sentinel, e.Name()))
	}
	top, err := os.ReadDir(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range top {
		if e.Name() != "rootfs" && e.Name() != "sentinel" {
			t.Errorf("written outside the rootfs: %s", filepath.Join(s.dir, e.Name()))
		}
	}
}

func testLogger(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}

func isRoot() bool { return os.Geteuid() == 0 }

func mustConfigFile(t testing.TB, img v1.Image, cf *v1.ConfigFile) v1.Image {
	t.Helper()
	img, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
