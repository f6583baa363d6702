// Package testenv gives tests the real things they run against: the scv-hpc binary,
// a loopback OCI registry, the sample images, a single-node Slurm. Helpers skip
// nothing silently: a missing tool fails the test with the command that installs it
// (scripts/deps.sh, run by 'make test').
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

var (
	buildMu sync.Mutex
	built   = map[string]string{} // package → built program, once per test process
)

// RepoRoot returns the repository root (the directory holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	return repoRoot()
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Binary builds ./cmd/scv-hpc once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	return BuildProgram(t, "./cmd/scv-hpc")
}

// BuildProgram builds the Go main package pkg (a path relative to the repository root)
// as a static linux/amd64 program, once per test process, and returns its path. The
// programs live in the repository's git-ignored .cache/testbin/, each replaced by a
// rename so that test processes building the same program at once never see a
// half-written file and nothing is left behind in the system's temporary directory.
func BuildProgram(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[pkg]; ok {
		return p
	}
	root := RepoRoot(t)
	dir := filepath.Join(root, ".cache", "testbin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(pkg))
	tmp, err := os.CreateTemp(dir, filepath.Base(pkg)+".tmp-")
	if err != nil {
		t.Fatal(err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command("go", "build", "-trimpath", "-o", tmp.Name(), pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		t.Fatal(err)
	}
	built[pkg] = dst
	return dst
}

// Need fails the test unless every named program is on PATH.
func Need(t testing.TB, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s is not installed: run 'scripts/deps.sh' (make test does) first", p)
		}
	}
}

// Run runs the program name with args and returns its combined output; a
// failure ends the test with the output.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
