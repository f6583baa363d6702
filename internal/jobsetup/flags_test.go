package jobsetup

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/sharding"
)

func TestFlagsSpec(t *testing.T) {
	data := t.TempDir()
	out := filepath.Join(t.TempDir(), "run")
	list := filepath.Join(t.TempDir(), "list.txt")
	if err := os.WriteFile(list, []byte("a.png\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"--data", data, "--out", out}
	tests := []struct {
		name string
		args []string
		bad  string // part of the ErrBadFlag message; "" for a good spec
	}{
		{"defaults", base, ""},
		{"no --data", []string{"--out", out}, "needs --data DIR and --out DIR"},
		{"zero shard size", append(base, "--shard-size=0"), "must be at least 1"},
		{"zero shards", append(base, "--shards=0"), "must be at least 1"},
		{"both plans", append(base, "--shards=2", "--shard-size=3"), "not both"},
		{"list with shards", append(base, "--files-from", list, "--shards=2"), "cannot balance"},
		{"fast scan with shards", append(base, "--fast-scan", "--shards=2"), "--fast-scan skips"},
		{"missing list", append(base, "--files-from", list+".none"), "--files-from: input list"},
		{"a list", append(base, "--files-from", list, "--shard-size=7", "--include=*.png"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f Flags
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			f.AddFlags(fs, "data", "out")
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			s, err := f.Spec("predict", fs.Changed, strings.NewReader(""), zerolog.Nop())
			if err == nil {
				defer s.List.Close()
			}
			if tt.bad != "" {
				if !errors.Is(err, ErrBadFlag) || !strings.Contains(err.Error(), tt.bad) {
					t.Fatalf("Spec: %v, want ErrBadFlag with %q", err, tt.bad)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Dir != out || s.DataRoot != data {
				t.Errorf("dirs %s, %s; want %s, %s", s.Dir, s.DataRoot, out, data)
			}
			if f.FilesFrom != "" {
				if s.List == nil || s.List.Name != list || s.Plan != (sharding.Plan{ShardSize: 7}) || !s.PlanSet || !s.IncludeSet {
					t.Errorf("spec %+v, want the list, plan 7, plan and include given", s)
				}
			} else if s.List != nil || s.PlanSet || s.IncludeSet {
				t.Errorf("spec %+v, want no list, nothing given", s)
			}
		})
	}
	var f Flags
	f.Data, f.Out = filepath.Join(data, "none"), out
	if _, err := f.Spec("predict", func(string) bool { return false }, nil, zerolog.Nop()); !errors.Is(err, ErrNoDataDir) || !errors.Is(err, ErrBadFlag) {
		t.Errorf("missing data directory: %v, want ErrNoDataDir and ErrBadFlag", err)
	}
}

func TestCheckForSlurm(t *testing.T) {
	free, taken := t.TempDir(), t.TempDir()
	if err := job.Create(taken, &job.Job{Model: "m"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		dir     string
		scratch string
		want    error
	}{
		{"new job", free, "", nil},
		{"absolute scratch", free, "/local/scratch", nil},
		{"relative scratch", free, "tmp", ErrBadFlag},
		{"a job is there", taken, "", job.ErrExists},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckForSlurm(tt.dir, job.RunOptions{Scratch: tt.scratch})
			if !errors.Is(err, tt.want) || (tt.want != nil && !errors.Is(err, ErrBadFlag)) {
				t.Errorf("CheckForSlurm = %v, want %v (a bad flag)", err, tt.want)
			}
		})
	}
}
