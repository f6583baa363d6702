package slurm

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/scivision-hpc/scv-hpc/internal/job"
)

func TestOptionsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	o := &Options{Resources: Resources{Partition: "gpu", GPUsPerTask: 1}, SignalSeconds: 120, Binary: "/usr/bin/scv-hpc", CacheDir: "/c", SbatchArgs: []string{"--x=1"}}
	if err := SaveOptions(dir, o); err != nil {
		t.Fatal(err)
	}
	got, err := LoadOptions(dir)
	if err != nil || !reflect.DeepEqual(got, o) {
		t.Fatalf("LoadOptions = %+v, %v", got, err)
	}
	p, err := got.Params(&job.Job{Model: "faces x"}, "/jobs/run 1", []string{"--retry-failed"})
	if err != nil {
		t.Fatal(err)
	}
	if p.JobName != "scv-faces_x" || !p.Requeue || !reflect.DeepEqual(p.GlobalArgs, []string{"--offline", "--cache", "/c"}) {
		t.Errorf("Params: %+v", p)
	}
	o.Gres = "gpu:1"
	if _, err := o.Params(&job.Job{Model: "m"}, "/j", nil); !errors.Is(err, ErrGPUsAndGres) {
		t.Errorf("--gres with --gpus-per-task: %v", err)
	}
	if _, err := LoadOptions(t.TempDir()); !errors.Is(err, ErrNotSubmitted) {
		t.Errorf("missing slurm.json: %v", err)
	}
}

// TestMerge: the one merge of submit (flags over the site config) and resubmit (flags
// over slurm.json).
func TestMerge(t *testing.T) {
	site := Options{Resources: Resources{Partition: "gpu", Account: "lab", Gres: "gpu:a100:1"}, SignalSeconds: 120, SbatchArgs: []string{"--constraint=a100"}}
	for _, tc := range []struct {
		name string
		args []string
		want Options
		err  error
	}{
		{"nothing given", nil, site, nil},
		{"one flag", []string{"--qos=high", "--partition=debug"},
			Options{Resources: Resources{Partition: "debug", Account: "lab", QOS: "high", Gres: "gpu:a100:1"}, SignalSeconds: 120, SbatchArgs: site.SbatchArgs}, nil},
		{"gpus replace gres", []string{"--gpus-per-task=2"},
			Options{Resources: Resources{Partition: "gpu", Account: "lab", GPUsPerTask: 2}, SignalSeconds: 120, SbatchArgs: site.SbatchArgs}, nil},
		{"sbatch args add", []string{"--sbatch-arg=--comment=x"},
			Options{Resources: Resources{Partition: "gpu", Account: "lab", Gres: "gpu:a100:1"}, SignalSeconds: 120, SbatchArgs: []string{"--constraint=a100", "--comment=x"}}, nil},
		{"zero given is kept", []string{"--signal-seconds=0"},
			Options{Resources: Resources{Partition: "gpu", Account: "lab", Gres: "gpu:a100:1"}, SbatchArgs: site.SbatchArgs}, nil},
		{"both gpu kinds", []string{"--gpus-per-task=1", "--gres=gpu:1"}, Options{}, ErrGPUsAndGres},
		{"negative", []string{"--cpus-per-task=-1"}, Options{}, errors.New("negative")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var flags Options
			fs := pflag.NewFlagSet("submit", pflag.ContinueOnError)
			RegisterFlags(fs, &flags)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			got := site
			got.SbatchArgs = append([]string{}, site.SbatchArgs...)
			err := got.Merge(&flags, fs.Changed)
			if tc.err != nil {
				if err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(tc.err.Error(), "")) && !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Merge = %+v, %v\nwant %+v", got, err, tc.want)
			}
		})
	}
}

// TestEveryFlagMerges: each Slurm flag, when given, changes its setting: no flag is
// registered without being merged.
func TestEveryFlagMerges(t *testing.T) {
	var flags Options
	fs := pflag.NewFlagSet("submit", pflag.ContinueOnError)
	RegisterFlags(fs, &flags)
	fs.VisitAll(func(f *pflag.Flag) {
		val := map[string]string{"int": "7", "bool": "true", "stringArray": "--x=y"}[f.Value.Type()]
		if val == "" {
			val = "v-" + f.Name
		}
		var fl Options
		fs2 := pflag.NewFlagSet("x", pflag.ContinueOnError)
		RegisterFlags(fs2, &fl)
		if err := fs2.Set(f.Name, val); err != nil {
			t.Fatal(err)
		}
		before := DefaultOptions()
		got := before
		if err := got.Merge(&fl, fs2.Changed); err != nil {
			t.Fatalf("--%s: %v", f.Name, err)
		}
		if reflect.DeepEqual(got, before) {
			t.Errorf("--%s=%s changed nothing", f.Name, val)
		}
	})
}

func TestWantGPU(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		gpu  bool
		want int
		set  bool
	}{
		{Options{}, true, 1, true},
		{Options{}, false, 0, false},
		{Options{Resources: Resources{GPUsPerTask: 2}}, true, 2, false},
		{Options{Resources: Resources{Gres: "gpu:a100:1"}}, true, 0, false},
	} {
		o := tc.o
		if set := o.WantGPU(tc.gpu); set != tc.set || o.GPUsPerTask != tc.want {
			t.Errorf("%+v.WantGPU(%v) = %v, GPUsPerTask %d; want %v, %d", tc.o, tc.gpu, set, o.GPUsPerTask, tc.set, tc.want)
		}
	}
}
