package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/results"
	"github.com/scivision-hpc/scv-hpc/internal/slurm"
)

func TestEnded(t *testing.T) {
	tests := []struct {
		name    string
		pending int64
		onSlurm bool
		states  []string
		err     error
		want    bool
	}{
		{"all answered", 0, false, nil, nil, true},
		{"local, pending", 3, false, nil, nil, false},
		{"slurm running", 3, true, []string{slurm.StateRunning, slurm.StateCompleted}, nil, false},
		{"slurm queued", 3, true, []string{slurm.StatePending}, nil, false},
		{"slurm done with pending inputs", 3, true, []string{slurm.StateFailed, slurm.StateFinished}, nil, true},
		{"squeue failing", 3, true, nil, errors.New("down"), false},
	}
	for _, tc := range tests {
		s := &Snapshot{Totals: results.Totals{Pending: tc.pending}, Slurm: map[int]slurm.ShardState{}, SlurmErr: tc.err}
		for i, st := range tc.states {
			s.Slurm[i] = slurm.ShardState{State: st}
		}
		if got := s.Ended(tc.onSlurm); got != tc.want {
			t.Errorf("%s: ended %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestFit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		w    int
		want string
	}{
		{"short", 10, "short"},
		{"a\x1b[2Jb\r\n", 10, "a?[2Jb??"},
		{"ééééé", 3, "éé…"},
	} {
		if got := fit(tc.in, tc.w); got != tc.want {
			t.Errorf("fit(%q, %d) = %q, want %q", tc.in, tc.w, got, tc.want)
		}
	}
}

// TestRunEndsWithTheJob: Run polls until the last input gets its result (written
// here meanwhile), drawing bars on a "terminal" and lines otherwise, and asks the
// scheduler once per refresh.
func TestRunEndsWithTheJob(t *testing.T) {
	for _, terminal := range []bool{true, false} {
		t.Run(fmt.Sprint("terminal=", terminal), func(t *testing.T) {
			dir := t.TempDir()
			j := &job.Job{Model: "m", Shards: 2, Inputs: 4, Slurm: &job.Slurm{Arrays: []job.Array{{JobID: "5", Shards: []int{0, 1}}}}}
			if err := job.Save(dir, j); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(job.ShardFile(dir, 0), []byte("a\nb\n"), 0o644)
			os.WriteFile(job.ShardFile(dir, 1), []byte("c\nd\n"), 0o644)
			w0, _ := results.OpenWriter(job.ResultFile(dir, 0))
			w0.Write(results.Record{Path: "a", OK: true})
			w0.Write(results.Record{Path: "b", Error: "bad", Stage: results.StagePredict})
			w0.Close()
			queries := 0
			query := func(context.Context, *job.Job) (map[int]slurm.ShardState, error) {
				queries++
				if queries == 3 { // the job progresses between refreshes
					w, _ := results.OpenWriter(job.ResultFile(dir, 1))
					w.Write(results.Record{Path: "c", OK: true})
					w.Write(results.Record{Path: "d", OK: true})
					w.Close()
				}
				return map[int]slurm.ShardState{0: {State: slurm.StateCompleted}, 1: {State: slurm.StateRunning}}, nil
			}
			var out bytes.Buffer
			s, err := Run(context.Background(), dir, &out, Options{Interval: 100 * time.Millisecond, Terminal: terminal, Query: query})
			if err != nil {
				t.Fatal(err)
			}
			if s.Totals.Pending != 0 || queries != 4 {
				t.Errorf("ended with %+v after %d queries, want 0 pending after 4", s.Totals, queries)
			}
			text := out.String()
			if terminal {
				if strings.Count(text, "\x1b[J") != 3 || !strings.Contains(text, "000001 [") || !strings.Contains(text, "failures so far: 1 (predict 1)") {
					t.Errorf("terminal view:\n%s", text)
				}
			} else if strings.Contains(text, "\x1b") || strings.Count(text, "\n") != 4 || !strings.Contains(text, "3/4 inputs ok, 1 failed, 0 pending") {
				t.Errorf("lines:\n%s", text)
			}
		})
	}
	if _, err := Run(context.Background(), t.TempDir(), &bytes.Buffer{}, Options{Interval: time.Millisecond}); !errors.Is(err, ErrBadInterval) {
		t.Errorf("interval 1ms: %v", err)
	}
}
