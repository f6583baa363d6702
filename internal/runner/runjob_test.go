package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/results"
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

// TestRunJobLockShard: with Options.LockShard each shard with inputs to run is locked
// when it starts and unlocked when it ends; a shard that another run finished while
// this one waited for its lock is read again under the lock and not run twice (also
// when it is the only shard, whose results are otherwise read once); a lock error
// stops the run before its shard, and is returned.
func TestRunJobLockShard(t *testing.T) {
	model := testModel(t)
	errHeld := errors.New("shard 2 is held")
	for _, tc := range []struct {
		name   string
		run    []int
		events string
		ok     int64
		err    error
	}{
		{"job", []int{0, 1, 2, 3}, "lock 0,unlock 0,lock 1,unlock 1,lock 2", 10, errHeld},
		{"one shard", []int{1}, "lock 1,unlock 1", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, shards := makeJobShards(t, 4, 10, model)
			var events []string
			o := testOptions(2)
			o.LockShard = func(_ context.Context, i int) (func(), error) {
				events = append(events, fmt.Sprintf("lock %d", i))
				switch i {
				case 1: // another run finished shard 1 before this one got its lock
					w, err := results.OpenWriter(job.ResultFile(dir, 1))
					if err != nil {
						t.Fatal(err)
					}
					for _, p := range shards[1] {
						w.Write(results.Record{Path: p, OK: true, Result: []byte(`{"by":"other"}`)})
					}
					if err := w.Close(); err != nil {
						t.Fatal(err)
					}
				case 2:
					return nil, errHeld
				}
				return func() { events = append(events, fmt.Sprintf("unlock %d", i)) }, nil
			}
			st, err := RunJob(context.Background(), dir, nil, tc.run, o)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("RunJob = %v, want %v", err, tc.err)
			}
			if got := strings.Join(events, ","); got != tc.events {
				t.Errorf("lock events %q, want %q", got, tc.events)
			}
			if st.OK != tc.ok {
				t.Errorf("stats %+v, want %d ok (shard 1 is left to the other run)", st, tc.ok)
			}
			if tc.ok > 0 {
				exactlyOnce(t, readResults(t, dir, 0), shards[0])
			}
			for _, r := range exactlyOnce(t, readResults(t, dir, 1), shards[1]) {
				if string(r.Result) != `{"by":"other"}` {
					t.Errorf("shard 1 run again under its lock: %s", r.Result)
				}
			}
			for _, i := range []int{2, 3} {
				if recs := readResults(t, dir, i); len(recs) != 0 {
					t.Errorf("shard %d ran past the lock error: %d results", i, len(recs))
				}
			}
		})
	}
}
