package testenv_test

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/registry"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// TestImageBuildCLI runs 'scv-hpc image build' the way the Makefile does: the image it
// pushes to a real registry, the layout and the archive it writes all open back, and its
// digest is FacesImage's.
func TestImageBuildCLI(t *testing.T) {
	bin := testenv.Binary(t)
	host := testenv.StartRegistry(t)
	want, err := testenv.FacesImage(t).Digest()
	if err != nil {
		t.Fatal(err)
	}
	common := []string{"image", "build",
		"--add", testenv.FacesBinary(t) + ":/usr/local/bin/faces",
		"--add", testenv.FacesCascade(t) + ":/usr/share/faces/facefinder",
		"--entrypoint", "/usr/local/bin/faces",
		"--label", "org.scivision.predict=/usr/local/bin/faces",
		"--label", "org.opencontainers.image.title=faces",
		"--log-format", "json"}
	dir := t.TempDir()
	tests := []struct {
		name, out, open string
		wantDigest      bool
	}{
		{"push", "--push=" + host + "/scivision/faces:1.0", host + "/scivision/faces:1.0", true},
		{"oci-layout", "--oci-layout=" + filepath.Join(dir, "layout") + ":1.0", "oci-layout:" + filepath.Join(dir, "layout") + ":1.0", true},
		{"docker-archive", "--docker-archive=" + filepath.Join(dir, "faces.tar"), "docker-archive:" + filepath.Join(dir, "faces.tar"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(bin, append(common, tt.out)...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("scv-hpc image build: %v\n%s", err, stderr.String())
			}
			printed := strings.TrimSpace(stdout.String())
			if printed != want.String() {
				t.Errorf("printed %q, want the FacesImage digest %s", printed, want)
			}
			_, src, err := registry.Open(context.Background(), tt.open, registry.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantDigest && src.Digest != want.String() {
				t.Errorf("opened %s: digest %s, want %s", tt.open, src.Digest, want)
			}
		})
	}

	usage := [][]string{
		{"image", "build", "--add", "x:/y"},                                          // no output
		{"image", "build", "--push", "h/r:t", "--oci-layout", dir},                   // two outputs
		{"image", "build", "--push", "h/r:t"},                                        // nothing to pack
		{"image", "build", "--add", "relative", "--oci-layout", dir},                 // no DST
		{"image", "build", "--add", "a:/b", "--label", "nokey", "--oci-layout", dir}, // bad label
	}
	for _, args := range usage {
		err := exec.Command(bin, args...).Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Errorf("scv-hpc %s: %v, want exit code 2", strings.Join(args, " "), err)
		}
	}
}
