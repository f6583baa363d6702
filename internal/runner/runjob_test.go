package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/job"
)

// makeJobShards writes a job directory with n shards of per inputs each.
func makeJobShards(t testing.TB, n, per int, predict ...string) (string, [][]string) {
	t.Helper()
	all := inputNames(n * per)
	dir := makeJob(t, all[:per], predict...)
	j, err := job.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	j.Shards, j.Inputs = n, int64(n*per)
	if err := job.Save(dir, j); err != nil {
		t.Fatal(err)
	}
	shards := make([][]string, n)
	for i := range shards {
		shards[i] = all[i*per : (i+1)*per]
		writeShard(t, dir, i, shards[i])
	}
	return dir, shards
}

// TestRunJobLoadsModelOncePerWorker: over 10 shards with 2 workers the model starts
// twice (it appends a line to /out/starts.log at each start), every shard gets its
// own complete results file and worker logs, and a second RunJob resumes with
// nothing to do and starts no model.
func TestRunJobLoadsModelOncePerWorker(t *testing.T) {
	model := testModel(t)
	dir, shards := makeJobShards(t, 10, 30, model, "-count-starts", "-max-batch", "2")
	all := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	st, err := RunJob(context.Background(), dir, nil, all, testOptions(2))
	if err != nil {
		t.Fatal(err)
	}
	if st.OK != 300 || st.Failed != 0 || st.Inputs != 300 {
		t.Errorf("stats %+v", st)
	}
	starts := filepath.Join(job.OutputsDir(dir), "starts.log")
	b, err := os.ReadFile(starts)
	if n := strings.Count(string(b), "\n"); err != nil || n != 2 {
		t.Errorf("the model started %d times (%v), want 2 (once per worker):\n%s", n, err, b)
	}
	for i, paths := range shards {
		exactlyOnce(t, readResults(t, dir, i), paths)
		for w := range 2 {
			if _, err := os.Stat(filepath.Join(job.LogsDir(dir), fmt.Sprintf("worker-%06d-%d.log", i, w))); err != nil {
				t.Errorf("shard %d: %v", i, err)
			}
		}
	}
	st, err = RunJob(context.Background(), dir, nil, all, testOptions(2))
	if err != nil || st.Skipped != 300 || st.OK != 0 {
		t.Errorf("resume: %+v, %v", st, err)
	}
	if b2, _ := os.ReadFile(starts); len(b2) != len(b) {
		t.Errorf("a complete job started the model again:\n%s", b2)
	}
}

// TestRunJobResumesPartialShards: shards already done are skipped, a partly done one
// resumes, and the job's recorded options apply unless overridden.
func TestRunJobResumesPartialShards(t *testing.T) {
	model := testModel(t)
	dir, shards := makeJobShards(t, 4, 20, model, "-fail-on", "img000005.png")
	if _, err := RunShard(context.Background(), dir, nil, 0, testOptions(1)); err != nil {
		t.Fatal(err)
	}
	st, err := RunJob(context.Background(), dir, nil, []int{0, 1, 2, 3}, testOptions(3))
	if err != nil {
		t.Fatal(err)
	}
	if st.Skipped != 20 || st.OK != 60 {
		t.Errorf("stats %+v, want shard 0 skipped and 60 run", st)
	}
	for i, paths := range shards {
		exactlyOnce(t, readResults(t, dir, i), paths)
	}
}
