package slurm

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// TestQueryAllRealSlurm: two arrays (and one Slurm no longer knows) are asked with
// a single squeue call, and every submitted shard gets its task's state.
func TestQueryAllRealSlurm(t *testing.T) {
	c := &Client{Env: testenv.StartSlurm(t)}
	ctx := context.Background()
	submit := func() string {
		cmd := exec.Command("sbatch", "--parsable", "--array=0-2", "--output=/dev/null", "--wrap", "sleep 60")
		cmd.Env = c.Env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("sbatch: %v: %s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	a, b := submit(), submit()
	t.Cleanup(func() {
		cmd := exec.Command("scancel", a, b)
		cmd.Env = c.Env
		cmd.Run()
	})
	j := &job.Job{Slurm: &job.Slurm{Arrays: []job.Array{
		{JobID: "999999", Shards: []int{7}}, // purged long ago
		{JobID: a, Shards: []int{0, 1, 2}},
		{JobID: b, Shards: []int{3, 4, 5}},
	}}}
	// Count the squeue calls through a wrapper in front of the real one.
	real, err := exec.LookPath("squeue")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	os.WriteFile(filepath.Join(dir, "squeue"), []byte("#!/bin/sh\necho \"$*\" >> '"+calls+"'\nexec '"+real+"' \"$@\"\n"), 0o755)
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	view, err := c.QueryAll(ctx, j)
	if err != nil {
		t.Fatal(err)
	}
	for shard := 0; shard < 6; shard++ {
		if !Active(view[shard].State) {
			t.Errorf("shard %d: %+v, want pending or running", shard, view[shard])
		}
	}
	if view[7].State != StateFinished {
		t.Errorf("purged array: %+v", view[7])
	}
	log, _ := os.ReadFile(calls)
	if n := strings.Count(string(log), "\n"); n != 1 || !strings.Contains(string(log), "999999,"+a+","+b) {
		t.Errorf("squeue calls: %q, want one for all arrays", log)
	}
}
