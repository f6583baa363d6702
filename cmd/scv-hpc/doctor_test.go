package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/doctor"
)

// TestDoctorCommand runs 'scv-hpc doctor' on this host, as text and as JSON: every check
// is reported, the exit code follows the worst status, and a catalog given with
// --catalog is what offline readiness reports on.
func TestDoctorCommand(t *testing.T) {
	dir := t.TempDir()
	cat := filepath.Join(dir, "catalog.yaml")
	if err := os.WriteFile(cat, []byte("models:\n  - name: doctor-probe-model\n    version: \"3\"\n    image: registry.example.org/x/probe:3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "cache")

	code, out, errOut := runInProcess(t, "--cache", cache, "--catalog", cat, "doctor", "--json")
	var checks []doctor.Check
	if err := json.Unmarshal([]byte(out), &checks); err != nil {
		t.Fatalf("doctor --json printed no JSON array: %v\n%s", err, out)
	}
	want := map[doctor.Status]int{doctor.OK: 0, doctor.Warn: 0, doctor.Fail: 1}[doctor.Worst(checks)]
	if code != want {
		t.Errorf("exit code %d, want %d for worst status %s (stderr %s)", code, want, doctor.Worst(checks), errOut)
	}
	names := map[string]doctor.Check{}
	for _, c := range checks {
		names[c.Name] = c
	}
	for _, n := range []string{"container runtime", "mksquashfs", "Slurm controller", "cache directory", "offline readiness"} {
		if _, ok := names[n]; !ok {
			t.Errorf("no %q check in %s", n, out)
		}
	}
	if c := names["offline readiness"]; !strings.Contains(c.Detail, "not cached: ") || !strings.Contains(c.Detail, "doctor-probe-model@3") {
		t.Errorf("offline readiness ignores --catalog: %+v", c)
	}
	if c := names["cache directory"]; !strings.Contains(c.Detail, cache) {
		t.Errorf("cache directory ignores --cache: %+v", c)
	}

	code2, text, _ := runInProcess(t, "--cache", cache, "--catalog", cat, "doctor")
	if code2 != code {
		t.Errorf("text run exit %d, JSON run %d", code2, code)
	}
	for _, c := range checks {
		line := string(c.Status) + " "
		if !strings.Contains(text, line) || !strings.Contains(text, c.Name) {
			t.Errorf("text output lacks %q / %q:\n%s", line, c.Name, text)
		}
		if c.Fix != "" && !strings.Contains(text, "fix: "+c.Fix) {
			t.Errorf("text output lacks the fix of %s", c.Name)
		}
	}
}
