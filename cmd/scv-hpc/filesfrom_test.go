package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/sharding"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// TestPredictFilesFrom: predict runs exactly the inputs a list names, read from stdin
// (CSV) or a file (text); entries outside --data, missing and repeated ones are
// reported, not run.
func TestPredictFilesFrom(t *testing.T) {
	testenv.Need(t, "mksquashfs", "unsquashfs")
	lay := facesLayout(t)
	data := filepath.Join(t.TempDir(), "data")
	os.MkdirAll(filepath.Join(data, "sub"), 0o755)
	samples := testenv.SampleImages(t)
	for _, n := range testenv.SampleNames {
		b, _ := os.ReadFile(filepath.Join(samples, n))
		os.WriteFile(filepath.Join(data, "sub", n), b, 0o644)
	}
	cache := filepath.Join(t.TempDir(), "cache")
	tests := []struct {
		name, list string
		stdin      bool
		want       []string
	}{
		{"csv on stdin", "label,path\nx,sub/coins.png\ny," + data + "/sub/astronaut.png\nz,/etc/passwd\nw,sub/none.png\nv,sub/./coins.png\n", true, []string{"sub/coins.png", "sub/astronaut.png"}},
		{"text file", "sub/camera.png\n../data/sub/coffee.png\nsub/camera.png\n", false, []string{"sub/camera.png"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			arg := "-"
			if !tc.stdin {
				arg = filepath.Join(t.TempDir(), "list.txt")
				os.WriteFile(arg, []byte(tc.list), 0o644)
			}
			cmd := exec.Command(testenv.Binary(t), "--cache", cache, "--log-format", "json", "predict", "oci-layout:"+lay+":faces",
				"--data", data, "--out", out, "--runtime", "builtin", "--gpus", "none", "--files-from", arg)
			cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
			cmd.Stdin = strings.NewReader(tc.list)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("predict: %v\n%s\n%s", err, stdout.String(), stderr.String())
			}
			var got []string
			j, err := job.Load(out)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < j.Shards; i++ {
				sharding.ReadShard(out, i, func(rel string) error { got = append(got, rel); return nil })
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("inputs %q, want %q", got, tc.want)
			}
			skipped := strings.Count(stderr.String(), `"message":"input skipped"`)
			if want := strings.Count(tc.list, "\n") - len(tc.want) - strings.Count(tc.list, "label,"); skipped != want || int64(skipped) != j.Skipped {
				t.Errorf("%d skips logged, job.json says %d, want %d:\n%s", skipped, j.Skipped, want, stderr.String())
			}
			if !strings.Contains(stdout.String(), "0 failed, 0 pending") {
				t.Errorf("summary: %s", stdout.String())
			}
			// A resume compares the list, not a scan of --data (which holds more files):
			// with the same list and without one, the job resumes with nothing to run.
			for _, resume := range [][]string{{"--files-from", arg}, nil} {
				args := append([]string{"--cache", cache, "predict", "oci-layout:" + lay + ":faces",
					"--data", data, "--out", out, "--runtime", "builtin", "--gpus", "none"}, resume...)
				c := exec.Command(testenv.Binary(t), args...)
				c.Stdin = strings.NewReader(tc.list)
				var so, se bytes.Buffer
				c.Stdout, c.Stderr = &so, &se
				if err := c.Run(); err != nil || !strings.Contains(so.String(), fmt.Sprintf("%d already done", len(tc.want))) {
					t.Errorf("resume %q: %v\n%s\n%s", resume, err, so.String(), se.String())
				}
			}
		})
	}
	// A list cannot be balanced by bytes.
	code, _, stderr := scv(t, nil, "--cache", cache, "predict", "oci-layout:"+lay+":faces", "--data", data, "--out", filepath.Join(t.TempDir(), "r"),
		"--runtime", "builtin", "--files-from", "/dev/null", "--shards", "2")
	if code != 2 || !strings.Contains(stderr, "shard size") {
		t.Errorf("--shards with --files-from: exit %d, %s", code, stderr)
	}
}
