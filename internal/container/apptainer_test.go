package container

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// render shows a command the way a reader checks it: one argv element per line (so
// spaces inside an element stay visible), then the environment added for the container.
var nopLog = zerolog.Nop()

func render(r *containerRuntime, s Spec) string {
	var b strings.Builder
	b.WriteString("argv:\n")
	b.WriteString("  " + r.name + "\n")
	for _, a := range r.Args(s) {
		b.WriteString("  [" + a + "]\n")
	}
	b.WriteString("env:\n")
	for _, e := range r.ExtraEnv(s) {
		b.WriteString("  " + e + "\n")
	}
	return b.String()
}

func TestContainerCommandLinesGolden(t *testing.T) {
	base := Spec{
		SIF:      "/shared/scv/sif/sha256/0123abcd.sif",
		Command:  []string{"python", "-m", "scv_adapter", "--model", "faces"},
		DataRoot: "/scratch/imgs",
		Scratch:  "/tmp/scv-hpc/run1/worker-0",
	}
	withGPU := func(s Spec, gpu string) Spec { s.GPU = gpu; return s }
	spaces := base
	spaces.DataRoot = "/home/ann/My Images/plankton 2024"
	spaces.Scratch = "/tmp/scv hpc/worker 1"
	spaces.SIF = "/home/ann/my cache/faces.sif"
	output := base
	output.Output = "/shared/jobs/run1/outputs"
	outputSpaces := spaces
	outputSpaces.Output = "/home/ann/scv jobs/run 1/outputs"
	env := base
	env.Env = map[string]string{"OMP_NUM_THREADS": "4", "SCV_MODEL": "faces", "CUDA_VISIBLE_DEVICES": "9"}
	tests := []struct {
		name string
		spec Spec
	}{
		{"cpu", base},
		{"gpu-worker0", withGPU(base, "0")},
		{"gpu-worker1", withGPU(base, "1")},
		{"gpu-multi", withGPU(base, "2,3")},
		{"spaces", spaces},
		{"env", env},
		{"env-gpu", withGPU(env, "1")},
		{"output", output},
		{"output-gpu", withGPU(output, "0")},
		{"output-spaces", outputSpaces},
	}
	for _, rt := range []*containerRuntime{newContainerRuntime(Apptainer, "/usr/bin/apptainer"), newContainerRuntime(Singularity, "/usr/bin/singularity")} {
		for _, tt := range tests {
			t.Run(rt.name+"/"+tt.name, func(t *testing.T) {
				got := render(rt, tt.spec)
				golden := filepath.Join("testdata", rt.name+"-"+tt.name+".golden")
				if *update {
					if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test -update to create it)", err)
				}
				if got != string(want) {
					t.Errorf("command line differs from %s:\n got:\n%s\nwant:\n%s", golden, got, want)
				}
				// The real exec.Cmd carries exactly these args and env.
				cmd, err := rt.Command(context.Background(), tt.spec)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Join(cmd.Args[1:], "\x00") != strings.Join(rt.Args(tt.spec), "\x00") {
					t.Errorf("Command args %q differ from Args %q", cmd.Args[1:], rt.Args(tt.spec))
				}
				envs := strings.Join(cmd.Env, "\n")
				for _, e := range rt.ExtraEnv(tt.spec) {
					if !strings.Contains(envs, e) {
						t.Errorf("Command env lacks %s", e)
					}
				}
			})
		}
	}
}

func TestContainerRefusesUnbindablePaths(t *testing.T) {
	rt := newContainerRuntime(Apptainer, "/usr/bin/apptainer")
	ok := Spec{SIF: "/x.sif", Command: []string{"m"}, DataRoot: "/data set", Scratch: "/s"}
	tests := []struct {
		name   string
		mutate func(*Spec)
		want   string
	}{
		{"comma in data", func(s *Spec) { s.DataRoot = "/imgs/a,b" }, "data directory"},
		{"colon in data", func(s *Spec) { s.DataRoot = "/imgs/2024-01-01T10:00" }, "data directory"},
		{"colon in scratch", func(s *Spec) { s.Scratch = "/tmp/a:b" }, "scratch directory"},
		{"relative data", func(s *Spec) { s.DataRoot = "imgs" }, "absolute"},
		{"empty scratch", func(s *Spec) { s.Scratch = "" }, "scratch directory"},
		{"comma in output", func(s *Spec) { s.Output = "/jobs/a,b/outputs" }, "output directory"},
		{"colon in output", func(s *Spec) { s.Output = "/jobs/2024-01-01T10:00/outputs" }, "output directory"},
		{"relative output", func(s *Spec) { s.Output = "jobs/outputs" }, "output directory"},
		{"no command", func(s *Spec) { s.Command = nil }, "no command"},
	}
	if _, err := rt.Command(context.Background(), ok); err != nil {
		t.Fatalf("valid spec refused: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok
			tt.mutate(&s)
			_, err := rt.Command(context.Background(), s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tt.want)
			}
			if strings.HasPrefix(tt.name, "comma ") || strings.HasPrefix(tt.name, "colon ") {
				if !errors.Is(err, ErrBadBindPath) {
					t.Errorf("error %v is not ErrBadBindPath", err)
				}
			}
		})
	}
}

func TestSelect(t *testing.T) {
	bin := t.TempDir()
	t.Setenv("PATH", bin)
	if _, err := Select("nope", nopLog); !errors.Is(err, ErrUnknownRuntime) {
		t.Errorf("Select(nope) = %v, want ErrUnknownRuntime", err)
	}
	if _, err := Select("apptainer", nopLog); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("Select(apptainer) without it on PATH = %v, want ErrNotInstalled", err)
	}
	// CheckName knows the names without looking for the runtimes.
	for name, known := range map[string]bool{"": true, "auto": true, "apptainer": true, "singularity": true, "builtin": true, "docker": false, "Apptainer": false} {
		if err := CheckName(name); (err == nil) != known || (err != nil && !errors.Is(err, ErrUnknownRuntime)) {
			t.Errorf("CheckName(%q) = %v, want known %v", name, err, known)
		}
	}
	for _, tt := range []struct{ install, want string }{
		{"", Builtin}, {"singularity", Singularity}, {"apptainer", Apptainer},
	} {
		if tt.install != "" {
			if err := os.WriteFile(filepath.Join(bin, tt.install), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		r, err := Select("auto", nopLog)
		if err != nil || r.Name() != tt.want {
			t.Errorf("auto with %q installed = %v, %v; want %s", tt.install, r, err, tt.want)
		}
	}
}
