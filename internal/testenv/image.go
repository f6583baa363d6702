package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/scivision-hpc/scv-hpc/internal/imagebuild"
)

// Image builds a one-layer image of files with cfg (imagebuild.Layer and
// imagebuild.Image: OCI media types, sorted entries, parent directories, fixed times),
// failing t on error. cfg.Platform picks os/arch, e.g. "linux/arm64".
func Image(t testing.TB, files []imagebuild.File, cfg imagebuild.Config) v1.Image {
	t.Helper()
	layer, err := imagebuild.Layer(files)
	if err != nil {
		t.Fatalf("build layer: %v", err)
	}
	img, err := imagebuild.Image([]v1.Layer{layer}, cfg)
	if err != nil {
		t.Fatalf("build image: %v", err)
	}
	return img
}

// FileSHA256 returns the hex SHA-256 of the file at p, failing t on error.
func FileSHA256(t testing.TB, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Push uploads img to ref (host/repo:tag; plain HTTP to a loopback registry) and returns
// its digest, failing t on error.
func Push(t testing.TB, img v1.Image, ref string) string {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}
