package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/results"
	"github.com/scivision-hpc/scv-hpc/internal/slurm"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// collected runs 'scv-hpc collect' to a JSONL file and returns its records by path,
// failing on a duplicate path.
func collected(t *testing.T, env []string, dir string) map[string]results.Record {
	t.Helper()
	out := filepath.Join(t.TempDir(), "all.jsonl")
	code, stdout, stderr := scv(t, env, "collect", dir, "-o", out)
	if code != 0 && code != 3 {
		t.Fatalf("collect: exit %d\n%s\n%s", code, stdout, stderr)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs := map[string]results.Record{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r results.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("collect line %q: %v", sc.Text(), err)
		}
		if _, dup := recs[r.Path]; dup {
			t.Errorf("collect: %s appears twice", r.Path)
		}
		recs[r.Path] = r
	}
	return recs
}

// bigPNGs writes n large gradient images: about half a second of face search each.
func bigPNGs(t *testing.T, dir string, n int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		img := image.NewGray(image.Rect(0, 0, 1600, 1200))
		for y := 0; y < 1200; y++ {
			for x := 0; x < 1600; x++ {
				img.SetGray(x, y, color.Gray{Y: uint8((x*x + y*(3+i)) >> 4)})
			}
		}
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("big-%02d.png", i)))
		if err != nil {
			t.Fatal(err)
		}
		png.Encode(f, img)
		f.Close()
	}
}

// TestSubmitSlurmEndToEnd runs the demo model on a real single-node Slurm: submit
// over a few hundred images in several shards and two arrays (the test cluster's
// MaxArraySize is 8) with --max-parallel 2, every task running run-shard with the
// builtin runtime; status reaches done; collect gives one result per input with the
// values the model computes directly. Then a task killed with scancel mid-run is
// shown by status and completed by resubmit without duplicates, and cancel stops a
// whole job.
func TestSubmitSlurmEndToEnd(t *testing.T) {
	testenv.Need(t, "mksquashfs", "unsquashfs")
	slurmEnv := testenv.StartSlurm(t)
	bin, cascade := testenv.FacesBinary(t), testenv.FacesCascade(t)
	lay := facesLayout(t)
	model := "oci-layout:" + lay + ":faces"
	cache := filepath.Join(t.TempDir(), "shared cache")
	// An empty site config: nothing from this host's /etc/scv-hpc applies.
	site := filepath.Join(t.TempDir(), "site.yaml")
	if err := os.WriteFile(site, []byte("# no site defaults\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append([]string{"TMPDIR=" + t.TempDir(), "SCV_HPC_CONFIG=" + site}, slurmEnv...)

	t.Run("submit-status-collect", func(t *testing.T) {
		data, corrupt := dataset(t)
		rels := writePNGs(t, filepath.Join(data, "generated"), 300, 24, 18)
		inputs := 0
		filepath.WalkDir(data, func(_ string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				inputs++
			}
			return nil
		})
		out := filepath.Join(t.TempDir(), "run $(touch pwned) 1")
		code, stdout, stderr := scv(t, env, "--cache", cache, "--log-format", "json", "submit", model, "--data", data, "--out", out,
			"--shard-size", "30", "--max-parallel", "2", "--runtime", "builtin", "--gpus", "none", "--workers", "1")
		if code != 0 || !strings.Contains(stdout, "submitted 11 shard(s)") {
			t.Fatalf("submit: exit %d\n%s\n%s", code, stdout, stderr)
		}
		j, err := job.Load(out)
		if err != nil {
			t.Fatal(err)
		}
		if j.Inputs != int64(inputs) || len(j.Slurm.Arrays) != 2 || j.Slurm.MaxArraySize != testenv.SlurmTestMaxArraySize || j.Digest == "" {
			t.Fatalf("job.json: inputs %d arrays %+v max %d digest %q", j.Inputs, j.Slurm.Arrays, j.Slurm.MaxArraySize, j.Digest)
		}
		st := waitStatus(t, env, out, 8*time.Minute, func(s slurm.JobStatus) bool { return s.Totals.Pending == 0 && slurmIdle(s) })
		if st.Totals.OK != int64(inputs-1) || st.Totals.Failed != 1 {
			t.Errorf("status totals %+v, want %d ok and 1 failed (the corrupt image)", st.Totals, inputs-1)
		}
		for _, s := range st.Shards {
			if s.Slurm == nil || (s.Slurm.State != slurm.StateCompleted && s.Slurm.State != slurm.StateFailed) {
				t.Errorf("shard %d: slurm view %+v", s.Index, s.Slurm)
			}
		}
		recs := collected(t, env, out)
		if len(recs) != inputs {
			t.Errorf("collect: %d results, want %d", len(recs), inputs)
		}
		var all []string
		for rel := range recs {
			all = append(all, rel)
		}
		want := direct(t, bin, cascade, data, all)
		for rel, r := range recs {
			if rel == corrupt {
				if r.OK {
					t.Errorf("corrupt image ok: %+v", r)
				}
				continue
			}
			if !r.OK || string(compactJSON(t, r.Result)) != string(compactJSON(t, want[rel])) {
				t.Errorf("%s: through Slurm %s (ok %v %s), directly %s", rel, r.Result, r.OK, r.Error, want[rel])
			}
		}
		for _, rel := range rels {
			if _, ok := recs[filepath.Join("generated", rel)]; !ok {
				t.Errorf("no result for %s", rel)
			}
		}
		logs, _ := filepath.Glob(filepath.Join(out, "logs", "*_*.out"))
		if len(logs) != 11 {
			t.Errorf("want 11 task logs, got %d", len(logs))
		}
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			if !strings.Contains(string(b), "start node=") || !strings.Contains(string(b), "run-shard exit status=") {
				t.Errorf("%s lacks node or exit status:\n%s", l, b)
			}
		}
		noPwned(t, filepath.Dir(out))
	})

	t.Run("scancel-status-resubmit", func(t *testing.T) {
		data := filepath.Join(t.TempDir(), "big")
		bigPNGs(t, data, 24)
		out := filepath.Join(t.TempDir(), "run2")
		code, stdout, stderr := scv(t, env, "--cache", cache, "submit", model, "--data", data, "--out", out,
			"--shard-size", "12", "--max-parallel", "1", "--runtime", "builtin", "--gpus", "none", "--workers", "1")
		if code != 0 {
			t.Fatalf("submit: exit %d\n%s\n%s", code, stdout, stderr)
		}
		j, _ := job.Load(out)
		// Kill task 0 once it has written some results but not all.
		waitStatus(t, env, out, 3*time.Minute, func(s slurm.JobStatus) bool {
			return s.Shards[0].OK > 0 && s.Shards[0].Pending > 0 && s.Shards[0].Slurm != nil && s.Shards[0].Slurm.State == slurm.StateRunning
		})
		cmd := exec.Command("scancel", j.Slurm.Arrays[0].JobID+"_0")
		cmd.Env = append(os.Environ(), env...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("scancel: %v %s", err, b)
		}
		st := waitStatus(t, env, out, 3*time.Minute, func(s slurm.JobStatus) bool { return slurmIdle(s) && s.Shards[1].State == results.StateDone })
		if s0 := st.Shards[0]; s0.Slurm.State != slurm.StateCancelled || s0.State != results.StatePartial || s0.Pending == 0 {
			t.Fatalf("after scancel, shard 0: %+v slurm %+v", s0.ShardStatus, s0.Slurm)
		}
		code, stdout, stderr = scv(t, env, "resubmit", out)
		if code != 0 || !strings.Contains(stdout, "submitted 1 shard(s)") {
			t.Fatalf("resubmit: exit %d\n%s\n%s", code, stdout, stderr)
		}
		st = waitStatus(t, env, out, 3*time.Minute, func(s slurm.JobStatus) bool { return s.Totals.Pending == 0 && slurmIdle(s) })
		if st.Totals.OK != 24 || st.Shards[0].Slurm.State != slurm.StateCompleted {
			t.Errorf("after resubmit: %+v, shard 0 slurm %+v", st.Totals, st.Shards[0].Slurm)
		}
		if recs := collected(t, env, out); len(recs) != 24 {
			t.Errorf("collect: %d results, want 24", len(recs))
		}
		// Nothing left: resubmit says so and submits nothing.
		code, stdout, _ = scv(t, env, "resubmit", out)
		if code != 0 || !strings.Contains(stdout, "nothing to resubmit") {
			t.Errorf("second resubmit: exit %d %s", code, stdout)
		}
	})

	t.Run("refused", func(t *testing.T) {
		data := filepath.Join(t.TempDir(), "imgs")
		writePNGs(t, data, 3, 8, 8)
		out := filepath.Join(t.TempDir(), "run4")
		code, stdout, stderr := scv(t, env, "--cache", cache, "submit", model, "--data", data, "--out", out, "--partition", "nosuchpartition")
		if code != 1 || !strings.Contains(strings.ToLower(stderr), "invalid partition") || !strings.Contains(stderr, "resubmit") {
			t.Errorf("invalid partition: exit %d\n%s\n%s", code, stdout, stderr)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		data := filepath.Join(t.TempDir(), "big")
		bigPNGs(t, data, 8)
		out := filepath.Join(t.TempDir(), "run3")
		code, stdout, stderr := scv(t, env, "--cache", cache, "submit", model, "--data", data, "--out", out,
			"--shard-size", "4", "--max-parallel", "1", "--runtime", "builtin", "--gpus", "none")
		if code != 0 {
			t.Fatalf("submit: exit %d\n%s\n%s", code, stdout, stderr)
		}
		waitStatus(t, env, out, 3*time.Minute, func(s slurm.JobStatus) bool {
			return s.Shards[0].Slurm != nil && s.Shards[0].Slurm.State == slurm.StateRunning
		})
		code, stdout, stderr = scv(t, env, "cancel", out)
		if code != 0 || !strings.Contains(stdout, "cancelled job array") {
			t.Fatalf("cancel: exit %d\n%s\n%s", code, stdout, stderr)
		}
		st := waitStatus(t, env, out, 2*time.Minute, slurmIdle)
		for _, s := range st.Shards {
			if s.Slurm.State != slurm.StateCancelled {
				t.Errorf("shard %d after cancel: %+v", s.Index, s.Slurm)
			}
		}
	})
}

func compactJSON(t *testing.T, b []byte) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return b
	}
	out, _ := json.Marshal(v)
	return out
}
