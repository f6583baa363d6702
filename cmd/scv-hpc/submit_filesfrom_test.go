package main

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/scivision-hpc/scv-hpc/internal/slurm"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/sharding"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// TestSubmitFilesFrom: submit --files-from makes a job of exactly the inputs a list
// names, in list order, from a text file, a CSV file or stdin; entries outside
// --data (absolute, or climbing out with ..), missing ones and repeated ones are
// reported and left out, as the scan reports them. The job directory is written
// with --dry-run (job.json, shards, job.sbatch: what a real submit writes before
// sbatch), and one list on stdin is also submitted to the real single-node Slurm,
// whose tasks run just those inputs.
func TestSubmitFilesFrom(t *testing.T) {
	testenv.Need(t, "mksquashfs", "unsquashfs")
	model := "oci-layout:" + facesLayout(t) + ":faces"
	root := t.TempDir()
	data := filepath.Join(root, "data")
	rels := writePNGs(t, data, 6, 16, 12) // "part 00/img-0000.png" …
	outside := filepath.Join(root, "outside.png")
	if b, err := os.ReadFile(filepath.Join(data, rels[0])); err != nil || os.WriteFile(outside, b, 0o644) != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(root, "cache")
	site := filepath.Join(root, "site.yaml")
	if err := os.WriteFile(site, []byte("# no site defaults\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"TMPDIR=" + t.TempDir(), "SCV_HPC_CONFIG=" + site, "SLURM_CONF=" + filepath.Join(root, "no-slurm.conf")}
	dot := strings.Replace(rels[1], "/", "/./", 1) // the same input as rels[1], spelled otherwise

	tests := []struct {
		name  string
		list  string
		stdin bool // the list goes to stdin as "-"
		want  []string
		bad   int // entries reported and left out
	}{
		{"text file",
			rels[0] + "\n" + rels[2] + "\n" + filepath.Join(data, rels[4]) + "\n" + outside + "\n" + "part 00/none.png\n" + rels[2] + "\n" + "../outside.png\n",
			false, []string{rels[0], rels[2], rels[4]}, 4},
		{"csv file",
			"label,path\nx,\"" + rels[1] + "\"\ny," + filepath.Join(data, rels[3]) + "\nz,../outside.png\nw,part 00/none.png\nv," + dot + "\nu," + rels[5] + "\n",
			false, []string{rels[1], rels[3], rels[5]}, 3},
		{"text on stdin",
			rels[5] + "\n" + "/etc/passwd\n" + rels[0] + "\n" + rels[5] + "\n" + "part 01/missing.png\n",
			true, []string{rels[5], rels[0]}, 3},
		{"csv on stdin",
			"path,score\n" + rels[4] + ",1\n" + outside + ",2\n" + rels[4] + ",3\n" + rels[3] + ",4\n" + rels[1] + ",5\n",
			true, []string{rels[4], rels[3], rels[1]}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			arg, from := "-", "stdin"
			if !tc.stdin {
				ext := ".txt"
				if strings.HasPrefix(tc.list, "label,") {
					ext = ".csv"
				}
				arg = filepath.Join(t.TempDir(), "list"+ext)
				from = arg
				if err := os.WriteFile(arg, []byte(tc.list), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			code, stdout, stderr := scvStdin(t, env, tc.list, "--cache", cache, "--log-format", "json", "submit", model,
				"--data", data, "--out", out, "--files-from", arg, "--shard-size", "2", "--runtime", "builtin", "--gpus", "none", "--dry-run")
			if code != 0 {
				t.Fatalf("submit: exit %d\n%s\n%s", code, stdout, stderr)
			}
			j, shards := jobInputs(t, out)
			if !slices.Equal(shards, tc.want) {
				t.Errorf("shards hold %q, want %q", shards, tc.want)
			}
			if j.Inputs != int64(len(tc.want)) || j.Shards != (len(tc.want)+1)/2 || j.Skipped != int64(tc.bad) || j.FilesFrom != from {
				t.Errorf("job.json: inputs %d shards %d skipped %d files_from %q; want %d inputs, %d skipped, from %q",
					j.Inputs, j.Shards, j.Skipped, j.FilesFrom, len(tc.want), tc.bad, from)
			}
			if n := strings.Count(stderr, `"message":"input skipped"`); n != tc.bad {
				t.Errorf("%d skips logged, want %d:\n%s", n, tc.bad, stderr)
			}
			if array := fmt.Sprintf("#SBATCH --array=0-%d", j.Shards-1); !strings.Contains(stdout, array) {
				t.Errorf("script lacks %q:\n%s", array, stdout)
			}
		})
	}

	// The same on the real Slurm: the list on stdin, the tasks run exactly its inputs.
	t.Run("stdin on Slurm", func(t *testing.T) {
		env := append([]string{"TMPDIR=" + t.TempDir(), "SCV_HPC_CONFIG=" + site}, testenv.StartSlurm(t)...)
		tc := tests[2]
		out := filepath.Join(t.TempDir(), "run")
		code, stdout, stderr := scvStdin(t, env, tc.list, "--cache", cache, "--log-format", "json", "submit", model,
			"--data", data, "--out", out, "--files-from", "-", "--shard-size", "1", "--runtime", "builtin", "--gpus", "none", "--workers", "1")
		if code != 0 || !strings.Contains(stdout, "submitted 2 shard(s)") {
			t.Fatalf("submit: exit %d\n%s\n%s", code, stdout, stderr)
		}
		if _, shards := jobInputs(t, out); !slices.Equal(shards, tc.want) {
			t.Errorf("shards hold %q, want %q", shards, tc.want)
		}
		st := waitStatus(t, env, out, 4*time.Minute, func(s slurm.JobStatus) bool { return s.Totals.Pending == 0 && slurmIdle(s) })
		if st.Totals.OK != int64(len(tc.want)) || st.Totals.Failed != 0 {
			t.Errorf("status totals %+v, want %d ok", st.Totals, len(tc.want))
		}
		var ran []string
		for rel, r := range collected(t, env, out) {
			if !r.OK {
				t.Errorf("%s failed: %s", rel, r.Error)
			}
			ran = append(ran, rel)
		}
		if slices.Sort(ran); !slices.Equal(ran, slices.Sorted(slices.Values(tc.want))) {
			t.Errorf("the job ran %q, want %q", ran, tc.want)
		}
	})
}

// scvStdin runs scv-hpc with stdin from a string: its exit code, stdout and stderr.
func scvStdin(t *testing.T, env []string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(testenv.Binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, stdout.String(), stderr.String()
}

// jobInputs loads a job and the inputs of all its shards, in shard order.
func jobInputs(t *testing.T, dir string) (*job.Job, []string) {
	t.Helper()
	j, err := job.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var inputs []string
	for i := 0; i < j.Shards; i++ {
		if err := sharding.ReadShard(dir, i, func(rel string) error { inputs = append(inputs, rel); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return j, inputs
}
