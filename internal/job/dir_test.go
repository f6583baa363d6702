package job

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/lockfile"
)

func TestDirPaths(t *testing.T) {
	d := Dir("/j")
	for got, want := range map[string]string{
		d.JobFile(): "/j/job.json", d.SlurmFile(): "/j/slurm.json", d.Script(0): "/j/job.sbatch", d.Script(3): "/j/job.3.sbatch",
		d.ShardFile(12): "/j/shards/000012.txt", d.ResultFile(12): "/j/results/000012.jsonl", d.WorkerLog(2, 1): "/j/logs/worker-000002-1.log",
		d.SbatchLog(): "/j/logs/sbatch.log", d.OutputsDir(): "/j/outputs", d.ShardLock(7): "/j/locks/shard-000007.lock", d.JobLock(): "/j/locks/job.lock",
	} {
		if got != want {
			t.Errorf("%s, want %s", got, want)
		}
	}
}

// TestCreateOnce: of many processes' worth of concurrent Creates, exactly one wins,
// and job.json is the winner's, whole.
func TestCreateOnce(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = Create(dir, &Job{Model: "m", Digest: "sha256:x", Predict: []string{"p", string(rune('a' + i))}})
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrExists):
			t.Errorf("Create: %v", err)
		}
	}
	j, err := Load(dir)
	if won != 1 || err != nil || j.IdentityKey != j.Identity().Key() {
		t.Fatalf("%d winners; job %+v %v", won, j, err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".job.json-*"))
	if len(left) > 0 {
		t.Errorf("temp files left: %v", left)
	}
}

func TestAddArray(t *testing.T) {
	dir := t.TempDir()
	j := &Job{Model: "m", Digest: "sha256:x"}
	if err := Create(dir, j); err != nil {
		t.Fatal(err)
	}
	if err := AddArray(dir, j, 8, Array{JobID: "1", Shards: []int{0}}); err != nil {
		t.Fatal(err)
	}
	if err := AddArray(dir, j, 0, Array{JobID: "2", Shards: []int{1}}); err != nil {
		t.Fatal(err)
	}
	got, _ := Load(dir)
	if len(got.Slurm.Arrays) != 2 || got.Slurm.MaxArraySize != 8 || len(j.Slurm.Arrays) != 2 {
		t.Fatalf("arrays on disk %+v, in memory %+v", got.Slurm, j.Slurm)
	}
	other := &Job{Model: "n", Digest: "sha256:y"}
	other.IdentityKey = other.Identity().Key()
	if err := AddArray(dir, other, 0, Array{JobID: "3"}); err == nil {
		t.Error("an array of another job was recorded")
	}
}

func TestCheckIdentity(t *testing.T) {
	j := &Job{Model: "faces", Digest: "sha256:x", Predict: []string{"serve", "--model", "a"}}
	j.IdentityKey = j.Identity().Key()
	for _, tc := range []struct {
		name string
		want Identity
		ok   bool
	}{
		{"same", Identity{Digest: "sha256:x", Predict: []string{"serve", "--model", "a"}}, true},
		{"other model option", Identity{Digest: "sha256:x", Predict: []string{"serve", "--model", "b"}}, false},
		{"other image", Identity{Digest: "sha256:y", Predict: []string{"serve", "--model", "a"}}, false},
		{"words split otherwise", Identity{Digest: "sha256:x", Predict: []string{"serve --model", "a"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := j.CheckIdentity("/out", "faces2", tc.want)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckIdentity: %v, want ok=%v", err, tc.ok)
			}
			if err != nil && (!strings.Contains(err.Error(), "holds results of model faces") || !strings.Contains(err.Error(), "faces2")) {
				t.Errorf("message %q", err)
			}
		})
	}
	// job.json edited by hand: the recorded key no longer matches its fields.
	j.Predict = []string{"serve", "--model", "b"}
	if err := j.CheckIdentity("/out", "faces", j.Identity()); err == nil {
		t.Error("an edited job.json passed")
	}
}

func TestLockShardBusy(t *testing.T) {
	d := Dir(t.TempDir())
	unlock, err := d.LockShard(3)
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.LockShard(3)
	var be *BusyError
	if !errors.As(err, &be) || !errors.Is(err, ErrBusy) || be.Owner.PID != os.Getpid() || !strings.Contains(err.Error(), "shard 3") {
		t.Fatalf("second lock: %v", err)
	}
	if u, err := d.LockShard(4); err != nil {
		t.Fatalf("another shard: %v", err)
	} else {
		u()
	}
	unlock()
	u, err := d.LockShard(3)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	u()
}

// TestCheckOutput: collect -o must not overwrite the job's own files, however named.
func TestCheckOutput(t *testing.T) {
	dir := t.TempDir()
	d := Dir(filepath.Join(dir, "run"))
	if err := Create(string(d), &Job{Model: "m"}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(d.ResultFile(0), []byte("{}\n"), 0o644)
	os.WriteFile(d.Script(0), []byte("#!/bin/sh\n"), 0o644)
	os.Symlink(string(d), filepath.Join(dir, "alias"))
	os.Link(d.ResultFile(0), filepath.Join(dir, "hard.jsonl"))
	for _, tc := range []struct {
		path string
		own  bool
	}{
		{d.ResultFile(0), true},
		{d.ResultFile(9), true}, // not there yet, still the job's
		{filepath.Join(dir, "alias", "results", "000000.jsonl"), true},
		{filepath.Join(dir, "run", "shards", "..", "results", "000000.jsonl"), true},
		{d.JobFile(), true},
		{d.Script(0), true},
		{string(d), true},
		{filepath.Join(dir, "hard.jsonl"), true},
		{filepath.Join(string(d), "results.csv"), false},
		{filepath.Join(dir, "results.jsonl"), false},
		{filepath.Join(dir, "new", "dir", "out.csv"), false},
	} {
		err := d.CheckOutput(tc.path)
		if own := errors.Is(err, ErrOwnFile); own != tc.own || (err != nil && !own) {
			t.Errorf("%s: %v, want own=%v", tc.path, err, tc.own)
		}
	}
}

func TestWaitShard(t *testing.T) {
	d := Dir(t.TempDir())
	unlock, err := d.LockShard(1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	heard := 0
	if _, err := d.WaitShard(ctx, 1, func(lockfile.Info) { heard++ }); !errors.Is(err, ErrBusy) || heard != 1 {
		t.Fatalf("WaitShard while held: %v (told %d times)", err, heard)
	}
	go func() { time.Sleep(100 * time.Millisecond); unlock() }()
	u, err := d.WaitShard(context.Background(), 1, nil)
	if err != nil {
		t.Fatalf("WaitShard after release: %v", err)
	}
	u()
}
