package convert

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/scivision-hpc/scv-hpc/internal/sif"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// extracted converts the demo image and unpacks the SIF with sif.ExtractRootfs.
func extracted(t *testing.T) string {
	t.Helper()
	testenv.Need(t, "mksquashfs", "unsquashfs")
	p := convertTo(t, demoImage(t), t.TempDir(), "demo.sif", Options{})
	dst := filepath.Join(t.TempDir(), "rootfs")
	if err := sif.ExtractRootfs(t.Context(), p, dst); err != nil {
		t.Fatalf("extract: %v", err)
	}
	return dst
}

func TestExtractRootfs(t *testing.T) {
	root := extracted(t)
	wantFile(t, root, "etc/os-release", "ID=test\n")
	wantFile(t, root, "work/model.bin", strings.Repeat("w", 5000))
	wantAbsent(t, root, "etc/gone")
	wantMode(t, root, "work", 0o775)
	wantMode(t, root, "bin/tool", 0o755)
	if l, err := os.Readlink(filepath.Join(root, "bin/alias")); err != nil || l != "tool" {
		t.Errorf("bin/alias -> %q, %v", l, err)
	}
	a, _ := os.Stat(filepath.Join(root, "bin/tool"))
	b, _ := os.Stat(filepath.Join(root, "bin/hl"))
	if a == nil || b == nil || !os.SameFile(a, b) {
		t.Error("hard link bin/hl -> bin/tool lost")
	}
	// Nothing is left next to the target.
	ents, _ := os.ReadDir(filepath.Dir(root))
	if len(ents) != 1 {
		t.Errorf("extraction left %d entries next to the rootfs", len(ents))
	}
}

// TestExtractRootfsInto: the tree is made in the directory given (new, or empty) and
// nothing else is created next to it; a directory with contents is refused as is.
func TestExtractRootfsInto(t *testing.T) {
	testenv.Need(t, "mksquashfs", "unsquashfs")
	p := convertTo(t, demoImage(t), t.TempDir(), "demo.sif", Options{})
	for _, pre := range []bool{false, true} {
		parent := t.TempDir()
		dst := filepath.Join(parent, "r.tmp-1")
		if pre {
			if err := os.Mkdir(dst, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		if err := sif.ExtractRootfsInto(t.Context(), p, dst); err != nil {
			t.Fatalf("existing %v: %v", pre, err)
		}
		wantFile(t, dst, "etc/os-release", "ID=test\n")
		if ents, _ := os.ReadDir(parent); len(ents) != 1 {
			t.Errorf("existing %v: %d entries next to the tree, want it alone", pre, len(ents))
		}
	}
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "mine"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := sif.ExtractRootfsInto(t.Context(), p, full); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("non-empty target: err = %v", err)
	}
	wantFile(t, full, "mine", "x")
}

func TestExtractRootfsErrors(t *testing.T) {
	testenv.Need(t, "mksquashfs", "unsquashfs")
	p := convertTo(t, demoImage(t), t.TempDir(), "demo.sif", Options{})
	notSIF := filepath.Join(t.TempDir(), "not.sif")
	if err := os.WriteFile(notSIF, []byte("just text"), 0o644); err != nil {
		t.Fatal(err)
	}
	exists := t.TempDir()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name     string
		ctx      context.Context
		sif, dst string
		want     string
	}{
		{"target exists", context.Background(), p, exists, "already exists"},
		{"not a SIF", context.Background(), notSIF, filepath.Join(t.TempDir(), "r"), notSIF + " is not a valid SIF file"},
		{"cancelled", cancelled, p, filepath.Join(t.TempDir(), "r"), "context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sif.ExtractRootfs(tt.ctx, tt.sif, tt.dst)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if tt.dst != exists {
				if _, err := os.Lstat(tt.dst); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s exists after a failed extraction", tt.dst)
				}
				ents, _ := os.ReadDir(filepath.Dir(tt.dst))
				if len(ents) != 0 {
					t.Errorf("temporary files left: %v", ents)
				}
			}
		})
	}
}

// TestRunscriptBehaviour runs the runscript and env script of a converted
// image with the host's /bin/sh, the way the runtimes run them, and checks
// the OCI semantics Apptainer gives: ENTRYPOINT then CMD, arguments
// replacing CMD, shell evaluation unless SINGULARITY_NO_EVAL is set.
func TestRunscriptBehaviour(t *testing.T) {
	root := extracted(t)
	runscript := filepath.Join(root, ".singularity.d/runscript")
	envScript := filepath.Join(root, ".singularity.d/env/10-docker2singularity.sh")
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"entrypoint and cmd", nil, nil, "hello world a b"},
		{"arguments replace cmd", nil, []string{"x", "y z"}, "hello world x y z"},
		{"arguments are shell-evaluated", []string{"V=val"}, []string{"$V"}, "hello world val"},
		{"no-eval keeps arguments literal", []string{"SINGULARITY_NO_EVAL=1", "V=val"}, []string{"$V"}, "hello world $V"},
		{"no-eval without arguments", []string{"SINGULARITY_NO_EVAL=1"}, nil, "hello world a b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("/bin/sh", append([]string{runscript}, tt.args...)...)
			cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, tt.env...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("runscript: %v\n%s", err, out)
			}
			if got := strings.TrimSpace(string(out)); got != tt.want {
				t.Errorf("runscript printed %q, want %q", got, tt.want)
			}
		})
	}

	envTests := []struct {
		name string
		env  []string
		want string
	}{
		{"image values", nil, "bar baz|it's \"$HOME\" `x`||/usr/local/bin:/usr/bin:/bin"},
		{"user values win, PATH is the image's", []string{"FOO=mine", "NOVALUE=set"}, "mine|it's \"$HOME\" `x`|set|/usr/local/bin:/usr/bin:/bin"},
	}
	for _, tt := range envTests {
		t.Run("env "+tt.name, func(t *testing.T) {
			cmd := exec.Command("/bin/sh", "-c", `. "$0"; printf '%s|%s|%s|%s' "$FOO" "$QUOTED" "$NOVALUE" "$PATH"`, envScript)
			cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=/home/u"}, tt.env...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("env script: %v\n%s", err, out)
			}
			if string(out) != tt.want {
				t.Errorf("env gave %q, want %q", out, tt.want)
			}
		})
	}
}

// TestRunscriptShapes checks the runscript for images with only an
// entrypoint, only a cmd, or neither.
func TestRunscriptShapes(t *testing.T) {
	tests := []struct {
		name    string
		cfg     v1.Config
		args    []string
		noEval  bool
		want    string
		wantErr bool
	}{
		{"entrypoint only", v1.Config{Entrypoint: []string{"/bin/echo", "ep"}}, nil, false, "ep", false},
		{"entrypoint only, args", v1.Config{Entrypoint: []string{"/bin/echo", "ep"}}, []string{"1"}, false, "ep 1", false},
		{"cmd only", v1.Config{Cmd: []string{"/bin/echo", "it's cmd"}}, nil, false, "it's cmd", false},
		{"cmd only, args replace it", v1.Config{Cmd: []string{"/bin/echo", "cmd"}}, []string{"/bin/echo", "arg"}, false, "arg", false},
		{"cmd only, no-eval", v1.Config{Cmd: []string{"/bin/echo", "$X"}}, nil, true, "$X", false},
		{"neither", v1.Config{}, nil, false, "", false},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, "rs"+string(rune('a'+i)))
			if err := os.WriteFile(p, []byte(sif.Runscript(tt.cfg)), 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("/bin/sh", append([]string{p}, tt.args...)...)
			cmd.Env = []string{"PATH=/usr/bin:/bin", "X=x"}
			if tt.noEval {
				cmd.Env = append(cmd.Env, "SINGULARITY_NO_EVAL=1")
			}
			out, err := cmd.CombinedOutput()
			if (err != nil) != tt.wantErr {
				t.Fatalf("runscript: %v\n%s", err, out)
			}
			if got := strings.TrimSpace(string(out)); got != tt.want {
				t.Errorf("printed %q, want %q", got, tt.want)
			}
		})
	}
}

// TestEnvScriptLines pins the lines Apptainer writes for ordinary values, so
// an image converted here and one built by Apptainer have the same env script.
func TestEnvScriptLines(t *testing.T) {
	got := envScript([]string{"PATH=/opt/bin:/usr/bin", "LANG=C.UTF-8", "X=a b", "UNSET", "ODD=$x"}, testLogger(t))
	want := "#!/bin/sh\n" +
		"export PATH=\"/opt/bin:/usr/bin\"\n" +
		"export LANG=\"${LANG:-\"C.UTF-8\"}\"\n" +
		"export X=\"${X:-\"a b\"}\"\n" +
		"export UNSET=\"${UNSET:-}\"\n" +
		"[ -n \"${ODD:-}\" ] || ODD='$x'; export ODD\n"
	if got != want {
		t.Errorf("env script:\n%s\nwant:\n%s", got, want)
	}
}
