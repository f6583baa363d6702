package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/scivision-hpc/scv-hpc/internal/imagebuild"
)

// FacesBinaryPath is where the demo model image holds the binary.
const FacesBinaryPath = "/usr/local/bin/faces"

// facesCascadePath is where the demo model image holds the cascade.
const facesCascadePath = "/usr/share/faces/facefinder"

// FacesBinary builds the demo model (examples/models/faces, static) once per test
// process and returns its path.
func FacesBinary(t testing.TB) string {
	t.Helper()
	return BuildProgram(t, "./examples/models/faces")
}

// FacesCascade returns the path of the pretrained pigo cascade (cascade/facefinder in
// the github.com/esimov/pigo module).
func FacesCascade(t testing.TB) string {
	t.Helper()
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/esimov/pigo")
	cmd.Dir = RepoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("locate the pigo module (go list -m github.com/esimov/pigo): %v", err)
	}
	p := filepath.Join(strings.TrimSpace(string(out)), "cascade", "facefinder")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("pigo cascade: %v", err)
	}
	return p
}

// FacesImage builds the demo model's OCI image (linux/amd64): the binary at
// /usr/local/bin/faces, the cascade at /usr/share/faces/facefinder, entrypoint the
// binary, label org.scivision.predict=/usr/local/bin/faces. It is what
//
//	scv-hpc image build --add bin/faces:/usr/local/bin/faces \
//	  --add CASCADE:/usr/share/faces/facefinder --entrypoint /usr/local/bin/faces \
//	  --label org.scivision.predict=/usr/local/bin/faces --label org.opencontainers.image.title=faces \
//	  --push HOST/scivision/faces:1.0
//
// produces, with the same digest.
func FacesImage(t testing.TB) v1.Image {
	t.Helper()
	layer, err := imagebuild.Layer([]imagebuild.File{
		{Path: FacesBinaryPath, Src: FacesBinary(t), Mode: 0o755},
		{Path: facesCascadePath, Src: FacesCascade(t), Mode: 0o644},
	})
	if err != nil {
		t.Fatalf("build the faces image: %v", err)
	}
	img, err := imagebuild.Image([]v1.Layer{layer}, imagebuild.Config{
		Entrypoint: []string{FacesBinaryPath},
		Labels: map[string]string{
			"org.scivision.predict":          FacesBinaryPath,
			"org.opencontainers.image.title": "faces",
		},
		Platform: "linux/amd64",
	})
	if err != nil {
		t.Fatalf("build the faces image: %v", err)
	}
	return img
}
