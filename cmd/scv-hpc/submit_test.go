package main

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/cli"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/slurm"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// writePNGs writes n small distinct PNGs under dir (in sub-directories of 50).
func writePNGs(t *testing.T, dir string, n, w, h int) []string {
	t.Helper()
	var rels []string
	for i := 0; i < n; i++ {
		img := image.NewGray(image.Rect(0, 0, w+i%7, h+i%5))
		for p := range img.Pix {
			img.Pix[p] = uint8(p*(i+3) + i)
		}
		img.Set(1, 1, color.Gray{Y: uint8(i)})
		rel := filepath.Join(fmt.Sprintf("part %02d", i/50), fmt.Sprintf("img-%04d.png", i))
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
		rels = append(rels, rel)
	}
	return rels
}

// statusJSON runs 'scv-hpc status --json'.
func statusJSON(t *testing.T, env []string, dir string) slurm.JobStatus {
	t.Helper()
	code, stdout, stderr := scv(t, env, "--log-format", "json", "status", dir, "--json")
	var st slurm.JobStatus
	if code != 0 && code != 3 || json.Unmarshal([]byte(stdout), &st) != nil {
		t.Fatalf("status: exit %d\n%s\n%s", code, stdout, stderr)
	}
	return st
}

// waitStatus polls status until done says so.
func waitStatus(t *testing.T, env []string, dir string, timeout time.Duration, done func(slurm.JobStatus) bool) slurm.JobStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := statusJSON(t, env, dir)
		if done(st) {
			return st
		}
		if time.Now().After(deadline) {
			logs, _ := filepath.Glob(filepath.Join(dir, "logs", "*.out"))
			var tail string
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				tail += fmt.Sprintf("== %s\n%s\n", l, b)
			}
			t.Fatalf("timed out; status: %s\n%+v\n%s", st.Summary, st.Shards, tail)
		}
		time.Sleep(time.Second)
	}
}

func slurmIdle(st slurm.JobStatus) bool {
	for _, s := range st.Shards {
		if s.Slurm != nil && slurm.Active(s.Slurm.State) {
			return false
		}
	}
	return true
}

// noPwned fails if a file made by an injected command exists under root.
func noPwned(t *testing.T, root string) {
	t.Helper()
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), "pwned") {
			t.Errorf("injection ran: %s exists", path)
		}
		return nil
	})
}

// TestSubmitDryRunHostilePaths: --dry-run writes the job directory and prints the
// script and the exact sbatch command; paths that are shell code stay inert.
func TestSubmitDryRunHostilePaths(t *testing.T) {
	testenv.Need(t, "mksquashfs", "unsquashfs")
	lay := facesLayout(t)
	root := t.TempDir()
	data := filepath.Join(root, "data $(touch pwned) `touch pwned2` it's")
	writePNGs(t, data, 12, 16, 12)
	// (A newline, ',' or ':' in --out or --data is refused: apptainer cannot bind such a
	// path. The template's quoting of newlines is checked in internal/slurm.)
	out := filepath.Join(root, "out $(touch pwned3) \"q\" ;touch pwned4")
	fake := filepath.Join(root, "bin dir", "scv-hpc")
	cache := filepath.Join(root, "cache")
	env := []string{"SLURM_CONF=" + filepath.Join(root, "no-slurm.conf"), "TMPDIR=" + t.TempDir(), "SCV_HPC_CONFIG=" + filepath.Join(root, "site.yaml")}
	site := "cache: " + cache + "\nslurm:\n  partition: gpu\n  time: \"1:00:00\"\n  sbatch_args: [\"--constraint=a100\"]\n"
	if err := os.WriteFile(filepath.Join(root, "site.yaml"), []byte(site), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := scv(t, env, "--log-format", "json", "submit", "oci-layout:"+lay+":faces", "--data", data, "--out", out,
		"--shard-size", "5", "--max-parallel", "2", "--time", "0:30:00", "--sbatch-arg", "--comment=a b", "--scv-hpc", fake, "--dry-run", "--runtime", "builtin",
		"--scratch", "/node local/scv scratch")
	if code != 0 {
		t.Fatalf("submit --dry-run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"#SBATCH --partition=gpu", "#SBATCH --time=0:30:00", "#SBATCH --array=0-2%2",
		"sbatch --parsable", "--constraint=a100 '--comment=a b'", "--output=logs/%A_%a.out", "nothing submitted"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, stdout)
		}
	}
	j, err := job.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if j.Shards != 3 || j.Inputs != 12 || j.Digest == "" || !strings.HasPrefix(j.SIF, cache) || j.Run.Runtime != "builtin" || len(j.Slurm.Arrays) != 0 {
		t.Errorf("job.json: shards %d inputs %d digest %q sif %q runtime %q arrays %v", j.Shards, j.Inputs, j.Digest, j.SIF, j.Run.Runtime, j.Slurm.Arrays)
	}
	script, err := os.ReadFile(filepath.Join(out, "job.sbatch"))
	if err != nil {
		t.Fatal(err)
	}
	// --scratch is kept in job.json, where every task and every resubmit reads it.
	if j.Run.Scratch != "/node local/scv scratch" || strings.Contains(string(script), "--scratch") {
		t.Errorf("scratch: job.json %q; script:\n%s", j.Run.Scratch, script)
	}
	if out, err := exec.Command("bash", "-n", filepath.Join(out, "job.sbatch")).CombinedOutput(); err != nil {
		t.Errorf("bash -n: %v\n%s", err, out)
	}
	if !strings.Contains(string(script), slurm.Quote(fake)) || !strings.Contains(string(script), slurm.Quote(cache)) {
		t.Errorf("script does not run %s with --cache %s:\n%s", fake, cache, script)
	}
	noPwned(t, root)
	// resubmit --dry-run --json plans every shard again (none has results).
	code, stdout, stderr = scv(t, env, "resubmit", out, "--dry-run", "--json", "--partition", "debug")
	var plan struct {
		DryRun bool `json:"dry_run"`
		Arrays []struct {
			Shards  []int
			Command []string
			Script  string
		}
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &plan) != nil || !plan.DryRun || len(plan.Arrays) != 1 || len(plan.Arrays[0].Shards) != 3 {
		t.Fatalf("resubmit --dry-run --json: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if b, _ := os.ReadFile(plan.Arrays[0].Script); !strings.Contains(string(b), "#SBATCH --partition=debug") || !strings.Contains(string(b), "#SBATCH --time=0:30:00") {
		t.Errorf("resubmit script does not keep the saved time and take the new partition:\n%s", b)
	}
	// A second submit into the same --out is refused with what to do instead.
	code, _, stderr = scv(t, env, "submit", "oci-layout:"+lay+":faces", "--data", data, "--out", out, "--dry-run")
	if code != 2 || !strings.Contains(stderr, "resubmit") {
		t.Errorf("second submit: exit %d\n%s", code, stderr)
	}
}

func TestSubmitUsage(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no data", []string{"submit", "faces", "--out", dir}, 2, "--data"},
		{"both plans", []string{"submit", "faces", "--data", dir, "--out", dir + "/o", "--shards", "2", "--shard-size", "3"}, 2, "not both"},
		{"data missing", []string{"submit", "faces", "--data", dir + "/nope", "--out", dir + "/o"}, 2, "not a readable directory"},
		{"offline not cached", []string{"--offline", "--cache", dir + "/cache", "submit", "faces", "--data", dir, "--out", dir + "/o"}, 1, "scv-hpc stage"},
		{"out with a colon", []string{"submit", "faces", "--data", dir, "--out", dir + "/a:b"}, 2, "--bind splits paths"},
		{"out with a newline", []string{"submit", "faces", "--data", dir, "--out", dir + "/a\nb"}, 2, "newline"},
		{"relative scratch", []string{"submit", "faces", "--data", dir, "--out", dir + "/o", "--scratch", "tmp"}, 2, "absolute path"},
		// The job's load error names the directory once, as it is (no "cancel DIR: DIR: ...").
		{"cancel no job", []string{"cancel", dir}, 1, "scv-hpc: " + dir + ": not a job directory (no job.json)"},
		{"resubmit no job", []string{"resubmit", dir}, 1, "scv-hpc: " + dir + ": not a job directory (no job.json)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := scv(t, nil, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, want %d with %q\nstdout: %s\nstderr: %s", code, tc.code, tc.want, stdout, stderr)
			}
		})
	}
}

// TestResubmitChecksBeforeSbatch: resubmit parses the job script template (given, or
// saved in slurm.json) before anything else and refuses a bad one as a usage error;
// a value that cannot go into the script is refused before sbatch runs. A good
// template is the one sbatch gets.
func TestResubmitChecksBeforeSbatch(t *testing.T) {
	root := t.TempDir()
	good := filepath.Join(root, "good.tmpl")
	if err := os.WriteFile(good, []byte("#!/bin/bash\n#SBATCH --array={{.Array}}\n# site template offset={{.Offset}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(root, "broken.tmpl")
	if err := os.WriteFile(broken, []byte("#!/bin/bash\n{{if .Array}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		saved string // template saved in slurm.json
		args  []string
		code  int
		want  string // in stderr, or in the script for exit 0
	}{
		{"broken template", "", []string{"--template", broken}, cli.ExitUsage, "parse job script template"},
		{"missing template", "", []string{"--template", filepath.Join(root, "nope.tmpl")}, cli.ExitUsage, "read job script template"},
		{"broken saved template", broken, nil, cli.ExitUsage, "parse job script template"},
		{"unsafe partition", "", []string{"--partition", "gpu debug"}, cli.ExitError, "unsafe value"},
		{"good template", "", []string{"--template", good}, cli.ExitOK, "# site template offset=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := statusJob(t, false) // shards 1 and 2 have inputs without a result
			j, err := job.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			j.Slurm = &job.Slurm{}
			if err := job.Save(dir, j); err != nil {
				t.Fatal(err)
			}
			if err := slurm.SaveOptions(dir, &slurm.Options{Binary: "/opt/scv-hpc/bin/scv-hpc", SignalSeconds: 120, Template: tc.saved}); err != nil {
				t.Fatal(err)
			}
			ran := filepath.Join(t.TempDir(), "sbatch-ran")
			testenv.ScriptPATH(t, map[string]string{
				"scontrol": "echo MaxArraySize=1001\n",
				"sbatch":   "echo \"$@\" > '" + ran + "'\necho 4242\n",
			})
			code, stdout, stderr := runInProcess(t, append([]string{"resubmit", dir}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout, stderr)
			}
			_, statErr := os.Stat(ran)
			after, err := job.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			if tc.code != cli.ExitOK {
				if !strings.Contains(stderr, tc.want) {
					t.Errorf("stderr lacks %q:\n%s", tc.want, stderr)
				}
				if !os.IsNotExist(statErr) || len(after.Slurm.Arrays) != 0 {
					t.Errorf("sbatch ran (%v) or arrays were recorded (%+v)", statErr, after.Slurm.Arrays)
				}
				if _, err := os.Stat(filepath.Join(dir, "job.sbatch")); tc.code == cli.ExitUsage && err == nil {
					t.Error("a script was written before the template was refused")
				}
				return
			}
			if statErr != nil || len(after.Slurm.Arrays) != 1 || after.Slurm.Arrays[0].JobID != "4242" || !reflect.DeepEqual(after.Slurm.Arrays[0].Shards, []int{1, 2}) {
				t.Fatalf("sbatch ran: %v; arrays %+v\n%s", statErr, after.Slurm.Arrays, stderr)
			}
			if b, err := os.ReadFile(filepath.Join(dir, "job.sbatch")); err != nil || !strings.Contains(string(b), tc.want) {
				t.Errorf("script does not come from the site template (%v):\n%s", err, b)
			}
		})
	}
}

// TestSubmitKeepsJobWhenSbatchFails: when sbatch refuses the job, submit fails with
// Slurm's reason and says that the job directory is kept and how to submit it again;
// the job is there for resubmit.
func TestSubmitKeepsJobWhenSbatchFails(t *testing.T) {
	lay := countingLayout(t)
	data := t.TempDir()
	for i := range 3 {
		os.WriteFile(filepath.Join(data, fmt.Sprintf("img%d.png", i)), []byte("x"), 0o644)
	}
	out := filepath.Join(t.TempDir(), "run")
	testenv.ScriptPATH(t, map[string]string{
		"scontrol": "echo MaxArraySize=1001\n",
		"sbatch":   "echo 'sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified' >&2\nexit 1\n",
	})
	code, stdout, stderr := runInProcess(t, "--cache", filepath.Join(t.TempDir(), "cache"), "submit", "oci-layout:"+lay+":counting",
		"--data", data, "--out", out, "--scv-hpc", "/opt/scv-hpc/bin/scv-hpc")
	want := "\nthe job directory " + out + " is kept: fix the cause, then run 'scv-hpc resubmit " + slurm.Quote(out) + "' (its flags override the saved settings)\n"
	if code != cli.ExitError || !strings.Contains(stderr, "Invalid account") || !strings.Contains(stderr, want) {
		t.Fatalf("exit %d, want %d with sbatch's reason and %q\nstdout: %s\nstderr: %s", code, cli.ExitError, want, stdout, stderr)
	}
	if j, err := job.Load(out); err != nil || len(j.Slurm.Arrays) != 0 {
		t.Errorf("the job directory: %v, %+v; want the job, with no array", err, j)
	}
}
