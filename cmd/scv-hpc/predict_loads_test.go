package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/scivision-hpc/scv-hpc/internal/imagebuild"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// TestPredictLoadsModelOncePerWorker: predict over 10 shards with 2 workers starts
// the model twice, not once per shard and worker. The model (the runner's test
// model, packed as an image) appends a line to /out/starts.log at each start.
func TestPredictLoadsModelOncePerWorker(t *testing.T) {
	lay := countingLayout(t)
	data := inputsDir(t, 30)
	out := filepath.Join(t.TempDir(), "run")
	env := []string{"TMPDIR=" + t.TempDir()}
	code, stdout, stderr := scv(t, env, "--cache", filepath.Join(t.TempDir(), "cache"), "predict", "oci-layout:"+lay+":counting",
		"--data", data, "--out", out, "--runtime", "builtin", "--shard-size", "3", "--workers", "2", "--gpus", "none")
	if code != 0 || !strings.Contains(stdout, "30 inputs in 10 shard(s): 30 ok") {
		t.Fatalf("predict exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	b, err := os.ReadFile(filepath.Join(job.OutputsDir(out), "starts.log"))
	if n := strings.Count(string(b), "\n"); err != nil || n != 2 {
		t.Errorf("the model started %d times (%v), want 2:\n%s", n, err, b)
	}
}

// countingLayout packs the runner's test model, which appends a line to
// /out/starts.log at each start, as an OCI layout tagged "counting".
func countingLayout(t *testing.T) string {
	t.Helper()
	testenv.Need(t, "mksquashfs", "unsquashfs")
	const bin = "/usr/local/bin/testmodel"
	layer, err := imagebuild.Layer([]imagebuild.File{{Path: bin, Src: testenv.BuildProgram(t, "./internal/runner/testdata/testmodel"), Mode: 0o755}})
	if err != nil {
		t.Fatal(err)
	}
	img, err := imagebuild.Image([]v1.Layer{layer}, imagebuild.Config{Entrypoint: []string{bin},
		Labels: map[string]string{"org.scivision.predict": bin + " -count-starts"}, Platform: "linux/amd64"})
	if err != nil {
		t.Fatal(err)
	}
	lay := filepath.Join(t.TempDir(), "layout")
	if err := imagebuild.WriteLayout(lay, img, "counting"); err != nil {
		t.Fatal(err)
	}
	return lay
}

// TestPredictResumeKeepsRunOptions: a new job records the run flags (--load-timeout
// included); a resumed predict runs with the recorded options, and a flag given again
// overrides only its own option.
func TestPredictResumeKeepsRunOptions(t *testing.T) {
	lay := countingLayout(t)
	data := inputsDir(t, 8)
	out := filepath.Join(t.TempDir(), "run")
	env := []string{"TMPDIR=" + t.TempDir()}
	cache := filepath.Join(t.TempDir(), "cache")
	predict := func(flags ...string) string {
		t.Helper()
		os.Remove(job.ResultFile(out, 0)) // every input pending again
		args := append([]string{"--cache", cache, "--log-format", "json", "predict", "oci-layout:" + lay + ":counting",
			"--data", data, "--out", out, "--gpus", "none"}, flags...)
		code, stdout, stderr := scv(t, env, args...)
		if code != 0 || !strings.Contains(stdout, "8 inputs in 1 shard(s): 8 ok") {
			t.Fatalf("predict %q: exit %d\nstdout: %s\nstderr: %s", flags, code, stdout, stderr)
		}
		return stderr
	}
	predict("--runtime", "builtin", "--workers", "3", "--retries", "0", "--load-timeout", "7m")
	j, err := job.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	want := job.RunOptions{Workers: 3, GPUs: "none", Runtime: "builtin", ItemTimeout: job.Duration(job.DefaultItemTimeout),
		Retries: 0, LoadTimeout: job.Duration(7 * time.Minute), CacheDir: cache}
	if j.Run != want {
		t.Errorf("job.json run options\n got %+v\nwant %+v", j.Run, want)
	}
	for _, tc := range []struct {
		name    string
		flags   []string
		workers string
	}{
		{"resumed without flags", nil, `"workers":3`},
		{"a flag given again", []string{"--workers", "2"}, `"workers":2`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := predict(tc.flags...)
			if !strings.Contains(logs, `"runtime":"builtin"`) || !strings.Contains(logs, tc.workers) {
				t.Errorf("want the builtin runtime and %s in the run's logs:\n%s", tc.workers, logs)
			}
		})
	}
}

// inputsDir writes n inputs img00.png … (the test model reads names, not pixels) into
// a new directory.
func inputsDir(t *testing.T, n int) string {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := os.WriteFile(filepath.Join(data, fmt.Sprintf("img%02d.png", i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return data
}
