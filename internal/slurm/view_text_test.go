package slurm

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/results"
)

func TestJobStatusWriteText(t *testing.T) {
	shard := func(i int, ok, pending int64, state string, sl *ShardState) ShardStatus {
		return ShardStatus{ShardStatus: results.ShardStatus{Index: i, Inputs: ok + pending, OK: ok, Pending: pending, State: state}, Slurm: sl}
	}
	st := &JobStatus{JobDir: "/j", Model: "faces", Summary: "2 shards: …", ScanSkipped: 3, Shards: []ShardStatus{
		shard(0, 5, 0, results.StateDone, &ShardState{State: StateCompleted, JobID: "7_0"}),
		shard(1, 1, 4, results.StatePartial, &ShardState{State: StatePending, Reason: "Priority", JobID: "7_1"}),
		shard(2, 0, 5, results.StatePending, nil),
	}}
	tests := []struct {
		name    string
		st      *JobStatus
		maxRows int
		all     bool
		want    string
	}{
		{"with Slurm, all shown", st, 50, false, `job /j (model faces)
   SHARD    STATE  INPUTS  OK  FAILED  PENDING               SLURM  TASK
  000000     done       5   5       0        0           completed   7_0
  000001  partial       5   1       0        4  pending (Priority)   7_1
  000002  pending       5   0       0        5                   -     -
note: the scan of the data left out 3 file(s) (unreadable, broken or outside links; see the log of the command that created the job)
2 shards: …
`},
		{"done ones hidden", st, 2, false, `job /j (model faces)
   SHARD    STATE  INPUTS  OK  FAILED  PENDING               SLURM  TASK
  000001  partial       5   1       0        4  pending (Priority)   7_1
  000002  pending       5   0       0        5                   -     -
(1 done shards not listed; --all lists them)
note: the scan of the data left out 3 file(s) (unreadable, broken or outside links; see the log of the command that created the job)
2 shards: …
`},
		{"files only, Slurm not asked", &JobStatus{JobDir: "/j", Model: "m", Summary: "s", SlurmError: "no squeue",
			Shards: []ShardStatus{shard(0, 1, 0, results.StateDone, nil)}}, 2, true, `job /j (model m)
   SHARD  STATE  INPUTS  OK  FAILED  PENDING
  000000   done       1   1       0        0
Slurm could not be asked: no squeue
s
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := tt.st.WriteText(&b, tt.maxRows, tt.all); err != nil {
				t.Fatal(err)
			}
			// tabwriter pads the last column too: compare without trailing blanks.
			got := ""
			for _, l := range strings.SplitAfter(b.String(), "\n") {
				got += strings.TrimRight(strings.TrimSuffix(l, "\n"), " ") + map[bool]string{true: "\n"}[strings.HasSuffix(l, "\n")]
			}
			if got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestJobSubmissionText(t *testing.T) {
	script := filepath.Join(t.TempDir(), "job.0.sbatch")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &JobSubmission{MaxArraySize: 4, Arrays: []Submission{
		{Array: job.Array{JobID: "11", Shards: []int{0, 1, 2, 3}}, Script: script, Command: []string{"sbatch", "--parsable", script}},
		{Array: job.Array{JobID: "12", Shards: []int{4}}, Script: script + "2", Command: []string{"sbatch", "a b"}},
	}}
	var b strings.Builder
	if err := s.WriteDryRun(&b, 5); err != nil {
		t.Fatal(err)
	}
	want := "# " + script + "\n#!/bin/sh\necho hi\nsbatch --parsable " + script + "\nsbatch 'a b'\n# dry run: 5 shards in 2 array(s) (MaxArraySize 4); nothing submitted\n"
	if b.String() != want {
		t.Errorf("dry run:\n%s\nwant\n%s", b.String(), want)
	}
	if got := s.ArraysText(); got != "11 (4 tasks), 12 (1 tasks)" {
		t.Errorf("ArraysText = %q", got)
	}
	r := s.Report("/j", true)
	if r.JobDir != "/j" || !r.DryRun || len(r.Arrays) != 2 || r.Arrays[1].JobID != "12" || r.Arrays[1].Shards[0] != 4 || r.Arrays[0].Script != script {
		t.Errorf("Report = %+v", r)
	}
}

func TestFlagsOptions(t *testing.T) {
	base := DefaultOptions()
	base.Partition, base.SbatchArgs, base.Binary = "site", []string{"--site"}, "/bin/scv-hpc"
	tests := []struct {
		name     string
		args     []string
		logLevel string
		check    func(o *Options) bool
		bad      error
	}{
		{"base kept", nil, "", func(o *Options) bool {
			return o.Partition == "site" && o.LogLevel == "" && o.SignalSeconds == DefaultSignalSeconds
		}, nil},
		{"flags over base", []string{"--partition=gpu", "--sbatch-arg=--x"}, "debug", func(o *Options) bool {
			return o.Partition == "gpu" && o.LogLevel == "debug" && strings.Join(o.SbatchArgs, " ") == "--site --x"
		}, nil},
		{"gpus and gres", []string{"--gpus-per-task=1", "--gres=gpu:1"}, "", nil, ErrBadOption},
		{"negative count", []string{"--cpus-per-task=-1"}, "", nil, ErrBadOption},
		{"bad template", []string{"--template=/none/such.tmpl"}, "", nil, ErrTemplate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f Flags
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			f.AddFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			o, _, err := f.Options(base, fs.Changed, tt.logLevel)
			if tt.bad != nil {
				if !errors.Is(err, tt.bad) {
					t.Fatalf("Options: %v, want %v", err, tt.bad)
				}
				return
			}
			if err != nil || !tt.check(o) {
				t.Errorf("Options = %+v, %v", o, err)
			}
		})
	}
}

// TestPlanJob: a job never submitted (no arrays: Slurm is not asked) is planned from
// its results on disk alone.
func TestPlanJob(t *testing.T) {
	dir := t.TempDir()
	j := &job.Job{Model: "m", Shards: 3, Inputs: 6}
	if err := job.Create(dir, j); err != nil {
		t.Fatal(err)
	}
	for i, lines := range []string{"a\nb\n", "c\nd\n", "e\nf\n"} {
		if err := os.WriteFile(job.ShardFile(dir, i), []byte(lines), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res := map[int]string{ // shard 0 done, 1 with a failure, 2 with nothing
		0: `{"path":"a","ok":true}` + "\n" + `{"path":"b","ok":true}` + "\n",
		1: `{"path":"c","ok":true}` + "\n" + `{"path":"d","ok":false,"stage":"predict"}` + "\n",
	}
	for i, s := range res {
		if err := os.WriteFile(job.ResultFile(dir, i), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for failedOnly, want := range map[bool][]int{false: {2}, true: {1}} {
		p, err := (&Client{}).PlanJob(t.Context(), dir, j, failedOnly)
		if err != nil || !slices.Equal(p.Shards, want) {
			t.Errorf("PlanJob(failedOnly %v) = %+v, %v; want shards %v", failedOnly, p, err, want)
		}
	}
}
