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
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildOut  []byte
)

// RepoRoot returns the repository root (the directory holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Binary builds ./cmd/scv-hpc once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "scv-hpc-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "scv-hpc")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/scv-hpc")
		cmd.Dir = RepoRoot(t)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("build scv-hpc: %v\n%s", buildErr, buildOut)
	}
	return binPath
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
