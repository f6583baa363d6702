package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/scivision-hpc/scv-hpc/internal/imagebuild"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// TestPredictLoadsModelOncePerWorker: predict over 10 shards with 2 workers starts
// the model twice, not once per shard and worker. The model (the runner's test
// model, packed as an image) appends a line to /out/starts.log at each start.
func TestPredictLoadsModelOncePerWorker(t *testing.T) {
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
	data := filepath.Join(t.TempDir(), "data")
	os.MkdirAll(data, 0o755)
	for i := range 30 {
		os.WriteFile(filepath.Join(data, fmt.Sprintf("img%02d.png", i)), []byte("x"), 0o644)
	}
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
