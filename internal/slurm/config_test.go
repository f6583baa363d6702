package slurm

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/job"
)

func TestSiteConfig(t *testing.T) {
	text := `cache: /shared/cache
template: /etc/scv-hpc/job.tmpl
scv_hpc: /opt/scv-hpc/bin/scv-hpc
slurm:
  partition: gpu
  account: lab
  time: "04:00:00"
  gpus_per_task: 1
  max_parallel: 8
  sbatch_args: ["--constraint=a100"]
`
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SCV_HPC_CONFIG", path)
	c, err := LoadSiteConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.Cache != "/shared/cache" || c.Slurm.Partition != "gpu" || c.Slurm.GPUsPerTask != 1 || c.Path != path {
		t.Fatalf("parsed %+v", c)
	}
	// Flags given on the command line win; the rest come from the site.
	o := Options{Partition: "debug", Time: "1:00:00", SbatchArgs: []string{"--comment=x"}}
	given := map[string]bool{"partition": true}
	o.ApplySite(c, func(f string) bool { return given[f] })
	want := Options{Partition: "debug", Account: "lab", Time: "04:00:00", GPUsPerTask: 1, MaxParallel: 8,
		SbatchArgs: []string{"--constraint=a100", "--comment=x"}, Template: "/etc/scv-hpc/job.tmpl", Binary: "/opt/scv-hpc/bin/scv-hpc"}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("ApplySite:\n got %+v\nwant %+v", o, want)
	}

	t.Setenv("SCV_HPC_CONFIG", filepath.Join(t.TempDir(), "missing.yaml"))
	if _, err := LoadSiteConfig(); err == nil || !strings.Contains(err.Error(), "SCV_HPC_CONFIG") {
		t.Errorf("missing explicit config: %v", err)
	}
	for _, bad := range []string{"slurm: [", "slurm:\n  max_parallel: -1\n"} {
		if _, err := ParseSiteConfig("x.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), "x.yaml") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestOptionsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	o := &Options{Partition: "gpu", GPUsPerTask: 1, SignalSeconds: 120, Binary: "/usr/bin/scv-hpc", CacheDir: "/c", SbatchArgs: []string{"--x=1"}}
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
	if _, err := o.Params(&job.Job{Model: "m"}, "/j", nil); err == nil {
		t.Error("--gres with --gpus-per-task accepted")
	}
	if _, err := LoadOptions(t.TempDir()); err == nil || !strings.Contains(err.Error(), "scv-hpc submit") {
		t.Errorf("missing slurm.json: %v", err)
	}
}
