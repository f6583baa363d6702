package jobsetup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/results"
	"github.com/scivision-hpc/scv-hpc/internal/sharding"
)

func files(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		p := filepath.Join(dir, n)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func spec(t *testing.T, data, out string) Spec {
	return Spec{Dir: out, DataRoot: data, Log: zerolog.Nop(), Plan: sharding.Plan{ShardSize: 2},
		Job: job.Job{Model: "faces", Digest: "sha256:" + strings.Repeat("a", 64), SIF: "/c/a.sif", Predict: []string{"/faces"}}}
}

// TestOpen: the resume policy, case by case, against real job directories.
func TestOpen(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  func(t *testing.T, s *Spec, data string)
		outcome Outcome
		err     any // nil, *job.MismatchError or *ChangedError
	}{
		{"same job resumes", func(*testing.T, *Spec, string) {}, Resumed, nil},
		{"other predict command", func(_ *testing.T, s *Spec, _ string) { s.Job.Predict = []string{"/faces", "--model", "b"} }, "", &job.MismatchError{}},
		{"other digest", func(_ *testing.T, s *Spec, _ string) { s.Job.Digest = "sha256:" + strings.Repeat("b", 64) }, "", &job.MismatchError{}},
		{"other predict, --force", func(_ *testing.T, s *Spec, _ string) { s.Job.Predict = []string{"/other"}; s.Force = true }, Replaced, nil},
		{"other data root", func(t *testing.T, s *Spec, _ string) { s.DataRoot = t.TempDir() }, "", &job.MismatchError{}},
		{"other include", func(_ *testing.T, s *Spec, _ string) { s.Include, s.IncludeSet = []string{"*.jpg"}, true }, "", &job.MismatchError{}},
		{"file added", func(t *testing.T, _ *Spec, data string) { files(t, data, "d/new.png") }, "", &ChangedError{}},
		{"file removed", func(t *testing.T, _ *Spec, data string) { os.Remove(filepath.Join(data, "b.png")) }, "", &ChangedError{}},
		{"other shard size", func(_ *testing.T, s *Spec, _ string) { s.Plan, s.PlanSet = sharding.Plan{ShardSize: 3}, true }, "", &ChangedError{}},
		{"same shard size given", func(_ *testing.T, s *Spec, _ string) { s.PlanSet = true }, Resumed, nil},
		{"file added, --rescan", func(t *testing.T, s *Spec, data string) { files(t, data, "d/new.png"); s.Rescan = true }, Rescanned, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, out := t.TempDir(), t.TempDir()
			files(t, data, "a.png", "b.png", "c.png")
			s := spec(t, data, out)
			j, oc, err := Open(context.Background(), s)
			if err != nil || oc != Created || j.Shards != 2 || j.Inputs != 3 || j.InputsSHA256 == "" || j.IdentityKey == "" || j.Tool == "" {
				t.Fatalf("first Open: %+v %s %v", j, oc, err)
			}
			tc.change(t, &s, data)
			_, oc, err = Open(context.Background(), s)
			switch want := tc.err.(type) {
			case nil:
				if err != nil || oc != tc.outcome {
					t.Fatalf("Open = %s, %v; want %s", oc, err, tc.outcome)
				}
			case *job.MismatchError:
				if !errors.As(err, &want) || !strings.Contains(err.Error(), "holds results of") {
					t.Fatalf("Open: %v, want a MismatchError", err)
				}
			case *ChangedError:
				if !errors.As(err, &want) {
					t.Fatalf("Open: %v, want a ChangedError", err)
				}
			}
		})
	}
}

// TestRescanKeepsResults: a rescan after a file was added and one removed keeps the
// results of the inputs still there, in their new shards, and moves the rest aside.
func TestRescanKeepsResults(t *testing.T) {
	data, out := t.TempDir(), t.TempDir()
	files(t, data, "a.png", "b.png", "c.png")
	s := spec(t, data, out)
	if _, _, err := Open(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	w, err := results.OpenWriter(job.Dir(out).ResultFile(0))
	if err != nil {
		t.Fatal(err)
	}
	w.WriteBatch([]results.Record{{Path: "a.png", OK: true, Result: []byte(`{"n":1}`)}, {Path: "b.png", OK: true, Result: []byte(`{"n":2}`)}})
	w.Close()
	files(t, data, "0.png")
	os.Remove(filepath.Join(data, "b.png"))
	s.Rescan = true
	j, oc, err := Open(context.Background(), s)
	if err != nil || oc != Rescanned || j.Inputs != 3 || j.Shards != 2 {
		t.Fatalf("rescan: %+v %s %v", j, oc, err)
	}
	// New order: 0.png a.png | c.png: a.png's result moved with it, b.png's is gone.
	fin, err := results.Final(job.Dir(out).ResultFile(0))
	if err != nil || len(fin) != 1 || string(fin["a.png"].Result) != `{"n":1}` {
		t.Fatalf("results of the new shard 0: %v %v", fin, err)
	}
	old, _ := filepath.Glob(filepath.Join(out, "replaced-*", "results", "000000.jsonl"))
	if len(old) != 1 {
		t.Fatalf("old results not kept aside: %v", old)
	}
	if _, oc, err := Open(context.Background(), Spec{Dir: out, DataRoot: data, Job: s.Job, Log: zerolog.Nop()}); err != nil || oc != Resumed {
		t.Fatalf("after the rescan: %s %v", oc, err)
	}
}
