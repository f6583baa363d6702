package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// ScriptPATH makes PATH hold only the given shell scripts, by name, for the rest of
// the test. The scripts may use shell built-ins alone. Tests use it where the real
// program cannot run here, such as Slurm's sacct, which needs slurmdbd and a database.
func ScriptPATH(t testing.TB, scripts map[string]string) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
}
