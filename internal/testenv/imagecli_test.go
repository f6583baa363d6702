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

	// Usage errors: exit code 2 and the message that says what is wrong.
	digestRef := filepath.Join(dir, "layout") + "@sha256:" + strings.Repeat("0", 64)
	usage := []struct {
		args []string
		want string
	}{
		{[]string{"image", "build", "--add", "x:/y"}, "give exactly one of --push"},
		{[]string{"image", "build", "--add", "x:/y", "--push", "h/r:t", "--oci-layout", dir}, "give exactly one of --push"},
		{[]string{"image", "build", "--push", "h/r:t"}, "nothing to pack"},
		{[]string{"image", "build", "--add", "relative", "--oci-layout", dir}, `--add "relative": want SRC:DST with an absolute DST`},
		{[]string{"image", "build", "--add", "a:/b", "--label", "nokey", "--oci-layout", dir}, `--label "nokey": bad image setting: want KEY=VALUE`},
		{[]string{"image", "build", "--add", "a:/b", "--oci-layout", dir + ":bad+tag"}, `"bad+tag" is not a valid tag`},
		{[]string{"image", "build", "--add", "a:/b", "--oci-layout", digestRef}, "give DIR[:TAG], not a digest"},
	}
	for _, u := range usage {
		var stderr bytes.Buffer
		cmd := exec.Command(bin, u.args...)
		cmd.Stderr = &stderr
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Errorf("scv-hpc %s: %v, want exit code 2", strings.Join(u.args, " "), err)
		}
		if !strings.Contains(stderr.String(), u.want) {
			t.Errorf("scv-hpc %s: stderr %q, want it to say %q", strings.Join(u.args, " "), stderr.String(), u.want)
		}
	}
}
