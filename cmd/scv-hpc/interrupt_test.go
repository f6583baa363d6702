package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// TestPredictAndRunShardInterrupted: SIGTERM during predict, then during run-shard,
// ends each with exit 1 and a line saying that the results so far are kept and the
// same command resumes; they are. The model hangs on one input of shard 1, so that
// each run is still going when the signal comes (each then waits out the grace period
// of its in-flight input).
func TestPredictAndRunShardInterrupted(t *testing.T) {
	lay := countingLayout(t)
	cat := filepath.Join(t.TempDir(), "catalog.yaml")
	yaml := fmt.Sprintf("models:\n  - {name: slow, image: %q, predict: /usr/local/bin/testmodel -count-starts -hang-on img15.png}\n", "oci-layout:"+lay+":counting")
	if err := os.WriteFile(cat, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	data := inputsDir(t, 20)
	out := filepath.Join(t.TempDir(), "run")
	env := []string{"TMPDIR=" + t.TempDir()}
	global := []string{"--cache", filepath.Join(t.TempDir(), "cache"), "--catalog", cat}

	// predict: signalled once shard 1 has its first answer.
	code, stderr := terminated(t, env, lines(job.ResultFile(out, 1)), append(global, "predict", "slow", "--data", data, "--out", out,
		"--runtime", "builtin", "--workers", "1", "--gpus", "none", "--shard-size", "10")...)
	if want := "scv-hpc: interrupted at shard 1 of 2: terminated signal received; results so far are in " + job.ResultsDir(out) + "; run the same command again to resume\n"; code != 1 || !strings.Contains(stderr, want) {
		t.Fatalf("predict after SIGTERM: exit %d, want 1 and %q in stderr:\n%s", code, want, stderr)
	}
	// run-shard of shard 1: signalled once its model has started.
	code, stderr = terminated(t, env, lines(filepath.Join(job.OutputsDir(out), "starts.log")), append(global, "run-shard", out, "--index", "1")...)
	if want := "scv-hpc: shard 1 interrupted after 0 new results; run the same command again to resume\n"; code != 1 || !strings.Contains(stderr, want) {
		t.Fatalf("run-shard after SIGTERM: exit %d, want 1 and %q in stderr:\n%s", code, want, stderr)
	}
	kept := allResults(t, out, 2)
	for i := range 15 {
		if r := kept[fmt.Sprintf("img%02d.png", i)]; len(r) != 1 || !r[0].OK {
			t.Errorf("img%02d.png: results %+v, want the one answer given before the signal", i, r)
		}
	}
	if len(kept) != 15 {
		t.Errorf("%d inputs with results, want 15", len(kept))
	}
}

// lines returns a func that counts the lines of a file (0 when there is none).
func lines(path string) func() int {
	return func() int {
		b, _ := os.ReadFile(path)
		return bytes.Count(b, []byte("\n"))
	}
}

// terminated runs scv-hpc with args, sends it SIGTERM once count gives more than it
// did at the start, and returns its exit code and stderr.
func terminated(t *testing.T, env []string, count func() int, args ...string) (int, string) {
	t.Helper()
	before := count()
	cmd := exec.Command(testenv.Binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(2 * time.Minute)
	for sent := false; ; {
		select {
		case err := <-done:
			var ee *exec.ExitError
			if !sent || err != nil && !errors.As(err, &ee) {
				t.Fatalf("%q ended before SIGTERM (%v)\nstdout: %s\nstderr: %s", args, err, &stdout, &stderr)
			}
			return cmd.ProcessState.ExitCode(), stderr.String()
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("%q: not ready within 2 minutes, or no exit after SIGTERM\nstderr: %s", args, &stderr)
		case <-time.After(20 * time.Millisecond):
			if !sent && count() > before {
				if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
				sent = true
			}
		}
	}
}
