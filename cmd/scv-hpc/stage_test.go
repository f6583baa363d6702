package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/fetch"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// TestStage stages a list of models through the pool: a failure is reported in the
// summary and the exit status, and does not stop the others.
func TestStage(t *testing.T) {
	reg := testenv.StartRegistryStoppable(t)
	testenv.Push(t, fakeFaces(t, "amd64", 0), reg.Host+"/scivision/faces:1.0")
	testenv.Push(t, fakeFaces(t, "amd64", 500), reg.Host+"/lab/a:1")
	testenv.Push(t, fakeFaces(t, "amd64", 900), reg.Host+"/lab/b:1")
	c := newCLI(t, facesCatalog(reg.Host))
	list := filepath.Join(t.TempDir(), "models.txt")
	body := "# models for the cluster\nfaces\n\n" + reg.Host + "/lab/a:1   # first\n" + reg.Host + "/lab/missing:1\n" + reg.Host + "/lab/b:1\n"
	if err := os.WriteFile(list, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, code := c.run("stage", "-f", list, "--jobs", "3")
	if code != 1 {
		t.Fatalf("stage with a missing image: exit %d, want 1\n%s\n%s", code, out, errs)
	}
	for _, re := range []string{
		`(?m)^faces\s+converted\s+sha256:`,
		`(?m)^` + regexp.QuoteMeta(reg.Host) + `/lab/a:1\s+converted\s+sha256:`,
		`(?m)^` + regexp.QuoteMeta(reg.Host) + `/lab/b:1\s+converted\s+sha256:`,
		`(?m)^` + regexp.QuoteMeta(reg.Host) + `/lab/missing:1\s+failed\s+-`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("stage summary does not match %s:\n%s", re, out)
		}
	}
	if !strings.Contains(errs, "1 of 4 models failed") || !strings.Contains(errs, "missing:1 not found") {
		t.Errorf("stage stderr:\n%s", errs)
	}
	if n := len(cacheLs(t, c)); n != 3 {
		t.Errorf("%d entries staged, want 3", n)
	}
	// Again, from arguments and standard input (-f -), as JSON: everything is cached now.
	cmd := c.command(t.Context(), "stage", "--json", "faces", "-f", "-")
	cmd.Stdin = strings.NewReader("# from a pipe\n" + reg.Host + "/lab/a:1\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("stage -f - --json: %v\n%s", err, stderr.String())
	}
	var results []fetch.Row
	if err := json.Unmarshal(stdout.Bytes(), &results); err != nil {
		t.Fatalf("stage --json output: %v\n%s", err, stdout.String())
	}
	if len(results) != 2 || results[0].Model != "faces" || results[1].Model != reg.Host+"/lab/a:1" {
		t.Fatalf("stage --json models: %+v, want faces then the one read from standard input", results)
	}
	for _, r := range results {
		if r.Status != "cached" || !strings.HasPrefix(r.Digest, "sha256:") || !strings.HasSuffix(r.SIF, ".sif") || r.Error != "" {
			t.Errorf("stage --json: %+v, want cached with a digest and a SIF", r)
		}
	}
	if _, errs, code := c.run("stage"); code != 2 || !strings.Contains(errs, "no models") {
		t.Errorf("stage without models: exit %d\n%s", code, errs)
	}
}
