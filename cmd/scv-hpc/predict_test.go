package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/imagebuild"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/results"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// facesResult is the demo model's answer for one image.
type facesResult struct {
	Width, Height, Count int
	Faces                []struct {
		X, Y, Size int
		Score      float32
	}
}

// facesLayout packs the demo model image (testenv.FacesImage: the binary and pigo's
// cascade in one layer, the predict label) into an OCI image layout, tagged "faces".
func facesLayout(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "faces-layout")
	if err := imagebuild.WriteLayout(dir, testenv.FacesImage(t), "faces"); err != nil {
		t.Fatal(err)
	}
	return dir
}

// dataset copies the sample images and adds images made here: a blank one (no
// face), one in a sub-directory with a space in its name, and a corrupt one.
func dataset(t *testing.T) (dir string, corrupt string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "my images")
	samples := testenv.SampleImages(t)
	for _, n := range testenv.SampleNames {
		b, err := os.ReadFile(filepath.Join(samples, n))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(dir, "samples"), 0o755)
		os.WriteFile(filepath.Join(dir, "samples", n), b, 0o644)
	}
	blank := image.NewGray(image.Rect(0, 0, 97, 61))
	for i := range blank.Pix {
		blank.Pix[i] = uint8(i * 7)
	}
	blank.Set(3, 3, color.Gray{Y: 255})
	os.MkdirAll(filepath.Join(dir, "made here"), 0o755)
	f, _ := os.Create(filepath.Join(dir, "made here", "blank.png"))
	png.Encode(f, blank)
	f.Close()
	os.WriteFile(filepath.Join(dir, "made here", "corrupt.png"), []byte("\x89PNG\r\n\x1a\nthis is not a png"), 0o644)
	return dir, "made here/corrupt.png"
}

// direct runs the faces binary on the host, fed by a pipe, over every input: the
// same computation without runner, container or job directory.
func direct(t *testing.T, bin, cascade, data string, rels []string) map[string]json.RawMessage {
	t.Helper()
	var in bytes.Buffer
	for i, rel := range rels {
		p, _ := json.Marshal(filepath.Join(data, rel))
		fmt.Fprintf(&in, `{"id":"%d","path":%s}`+"\n", i, p)
	}
	cmd := exec.Command(bin, "-cascade", cascade)
	cmd.Stdin = &in
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("faces directly: %v", err)
	}
	want := map[string]json.RawMessage{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var a struct {
			ID     string
			OK     bool
			Result json.RawMessage
		}
		if json.Unmarshal(sc.Bytes(), &a) != nil || a.ID == "" {
			continue
		}
		var i int
		fmt.Sscan(a.ID, &i)
		if a.OK {
			want[rels[i]] = a.Result
		}
	}
	return want
}

// scv runs the scv-hpc binary and returns its exit code and output.
func scv(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(testenv.Binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), out.String(), errb.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String(), errb.String()
}

func allResults(t *testing.T, jobDir string, shards int) map[string][]results.Record {
	t.Helper()
	by := map[string][]results.Record{}
	for s := 0; s < shards; s++ {
		err := results.Read(job.ResultFile(jobDir, s), func(r results.Record) error {
			by[r.Path] = append(by[r.Path], r)
			return nil
		})
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	return by
}

// TestPredictFacesBuiltinEndToEnd: the faces image → SIF (through fetch, from an OCI
// layout) → scv-hpc predict with the builtin runtime over real and generated images
// → one result per input, with the values the model computes directly.
func TestPredictFacesBuiltinEndToEnd(t *testing.T) {
	testenv.Need(t, "mksquashfs", "unsquashfs")
	bin, cascade := testenv.FacesBinary(t), testenv.FacesCascade(t)
	lay := facesLayout(t)
	data, corrupt := dataset(t)
	cache := filepath.Join(t.TempDir(), "cache")
	out := filepath.Join(t.TempDir(), "run 1")
	env := []string{"TMPDIR=" + t.TempDir()}
	model := "oci-layout:" + lay + ":faces"

	code, stdout, stderr := scv(t, env, "--cache", cache, "--log-format", "json", "predict", model,
		"--data", data, "--out", out, "--runtime", "builtin", "--shard-size", "3", "--workers", "2", "--gpus", "none")
	if code != 3 {
		t.Fatalf("predict exit %d (want 3: one corrupt input)\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	for _, want := range []string{"8 inputs in 3 shard(s): 7 ok, 1 failed, 0 pending", "merge with: scv-hpc collect"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	j, err := job.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if j.Digest == "" || !strings.HasPrefix(j.SIF, cache) || len(j.Predict) == 0 || j.Predict[0] != "/usr/local/bin/faces" {
		t.Errorf("job.json: digest %q sif %q predict %q", j.Digest, j.SIF, j.Predict)
	}
	got := allResults(t, out, j.Shards)
	var rels []string
	for rel := range got {
		rels = append(rels, rel)
	}
	want := direct(t, bin, cascade, data, rels)
	if len(got) != 8 {
		t.Errorf("%d inputs have results, want 8", len(got))
	}
	faces := 0
	for rel, recs := range got {
		if len(recs) != 1 {
			t.Errorf("%s: %d result lines", rel, len(recs))
			continue
		}
		r := recs[0]
		if rel == corrupt {
			if r.OK || r.Stage != results.StagePredict || !strings.Contains(r.Error, "decode") {
				t.Errorf("corrupt image: %+v", r)
			}
			continue
		}
		if !r.OK {
			t.Errorf("%s failed: %+v", rel, r)
			continue
		}
		var res facesResult
		if err := json.Unmarshal(r.Result, &res); err != nil {
			t.Fatal(err)
		}
		// Independent check of the image size, decoded here.
		f, _ := os.Open(filepath.Join(data, rel))
		cfg, _, err := image.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width != res.Width || cfg.Height != res.Height || res.Count != len(res.Faces) {
			t.Errorf("%s: model says %dx%d with %d faces (count %d), Go decodes %dx%d (%v)", rel, res.Width, res.Height, len(res.Faces), res.Count, cfg.Width, cfg.Height, err)
		}
		var wantRes facesResult
		json.Unmarshal(want[rel], &wantRes)
		if g, w := fmt.Sprint(res), fmt.Sprint(wantRes); g != w {
			t.Errorf("%s: through predict %s, directly %s", rel, g, w)
		}
		faces += res.Count
	}
	var astro facesResult
	json.Unmarshal(got["samples/astronaut.png"][0].Result, &astro)
	if astro.Count < 1 || faces < 2 {
		t.Errorf("astronaut.png has %d faces, %d in all: the detector found too few", astro.Count, faces)
	}
	var blank facesResult
	json.Unmarshal(got["made here/blank.png"][0].Result, &blank)
	if blank.Width != 97 || blank.Height != 61 || blank.Count != 0 {
		t.Errorf("blank.png: %+v", blank)
	}
	if b, err := os.ReadFile(filepath.Join(job.LogsDir(out), fmt.Sprintf("worker-%06d-%d.log", 0, 0))); err != nil || !strings.Contains(string(b), "starting model process") {
		t.Errorf("worker log: %v %s", err, b)
	}

	// The same predict again resumes: nothing is re-run.
	code, stdout, stderr = scv(t, env, "--cache", cache, "--offline", "predict", model,
		"--data", data, "--out", out, "--runtime", "builtin", "--gpus", "none")
	if code != 3 || !strings.Contains(stdout, "this run: 0 ok, 0 failed, 8 already done") {
		t.Errorf("resume: exit %d\n%s\n%s", code, stdout, stderr)
	}
	// run-shard of one shard as in an array task: the index from the environment, the
	// offset from the batch script.
	os.Remove(job.ResultFile(out, 2))
	code, stdout, stderr = scv(t, append(env, "SLURM_ARRAY_TASK_ID=1"), "--cache", cache, "--offline",
		"run-shard", out, "--offset", "1", "--runtime", "builtin", "--gpus", "none")
	if code != 0 && code != 3 || !strings.Contains(stdout, "shard 2: 2 inputs") {
		t.Errorf("run-shard: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if n := len(allResults(t, out, j.Shards)); n != 8 {
		t.Errorf("after run-shard %d inputs have results", n)
	}
	// Another data directory into the same --out is refused.
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "x.png"), []byte("x"), 0o644)
	code, _, stderr = scv(t, env, "--cache", cache, "--offline", "predict", model, "--data", other, "--out", out, "--runtime", "builtin")
	if code != 1 || !strings.Contains(stderr, "holds results of data") || !strings.Contains(stderr, "--force") {
		t.Errorf("mismatched resume: exit %d\n%s", code, stderr)
	}
	// The same image served by another predict command (a catalog entry with its own
	// options) is another identity: refused, never mixed into these results.
	cat := filepath.Join(t.TempDir(), "catalog.yaml")
	os.WriteFile(cat, []byte(fmt.Sprintf("models:\n  - {name: faces-other, image: %q, predict: [/usr/local/bin/faces, --threshold, \"0.9\"]}\n", model)), 0o644)
	code, _, stderr = scv(t, env, "--cache", cache, "--offline", "--catalog", cat, "predict", "faces-other", "--data", data, "--out", out, "--runtime", "builtin")
	if code != 1 || !strings.Contains(stderr, "holds results of model") || !strings.Contains(stderr, "--threshold") {
		t.Errorf("another predict command on the same image: exit %d\n%s", code, stderr)
	}
	// Another run holds the job (here: this test process), or one shard of it: a second
	// predict or run-shard says which run, and does no work.
	unlock, err := job.Dir(out).LockJob()
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr = scv(t, env, "--cache", cache, "--offline", "predict", model, "--data", data, "--out", out, "--runtime", "builtin", "--gpus", "none")
	if code != 1 || !strings.Contains(stderr, "in use by another run") || !strings.Contains(stderr, fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("predict while the job is locked: exit %d\n%s", code, stderr)
	}
	unlock()
	if unlock, err = job.Dir(out).LockShard(2); err != nil {
		t.Fatal(err)
	}
	before := mustRead(t, job.ResultFile(out, 2))
	rs := exec.Command(testenv.Binary(t), "--cache", cache, "--offline", "run-shard", out, "--index", "2", "--runtime", "builtin", "--gpus", "none", "--retry-failed")
	rs.Env = append(os.Environ(), env...)
	var rsErr bytes.Buffer
	rs.Stderr = &rsErr
	if err := rs.Start(); err != nil {
		t.Fatal(err)
	}
	rsDone := make(chan error, 1)
	go func() { rsDone <- rs.Wait() }()
	select {
	case err := <-rsDone:
		t.Fatalf("run-shard of a locked shard did not wait: %v\n%s", err, rsErr.String())
	case <-time.After(2 * time.Second):
	}
	if after := mustRead(t, job.ResultFile(out, 2)); string(after) != string(before) {
		t.Errorf("run-shard of a locked shard wrote results:\n%s", after)
	}
	unlock()
	if err := <-rsDone; err != nil && rs.ProcessState.ExitCode() != 3 {
		t.Errorf("run-shard after the lock was released: %v\n%s", err, rsErr.String())
	}
	if !strings.Contains(rsErr.String(), "another run holds this shard") || !strings.Contains(rsErr.String(), fmt.Sprintf(`"pid":%d`, os.Getpid())) {
		t.Errorf("run-shard did not say which run it waited for:\n%s", rsErr.String())
	}
	// A new file under --data: the resume says so and offers --rescan, which runs
	// only the new input.
	os.WriteFile(filepath.Join(data, "zz-new.png"), mustRead(t, filepath.Join(data, "made here", "blank.png")), 0o644)
	code, _, stderr = scv(t, env, "--cache", cache, "--offline", "predict", model, "--data", data, "--out", out, "--runtime", "builtin", "--gpus", "none")
	if code != 1 || !strings.Contains(stderr, "--rescan") || !strings.Contains(stderr, "8 inputs then, 9 inputs") {
		t.Errorf("resume over changed data: exit %d\n%s", code, stderr)
	}
	code, stdout, stderr = scv(t, env, "--cache", cache, "--offline", "predict", model, "--data", data, "--out", out, "--runtime", "builtin", "--gpus", "none", "--rescan")
	if code != 3 || !strings.Contains(stdout, "9 inputs") || !strings.Contains(stdout, "this run: 1 ok, 0 failed, 8 already done") {
		t.Errorf("--rescan: exit %d\n%s\n%s", code, stdout, stderr)
	}
	os.Remove(filepath.Join(data, "zz-new.png"))
	// --fast-scan (no stat per file) shards the same inputs, with no sizes, and gives
	// the same results.
	fast := filepath.Join(t.TempDir(), "fast")
	code, stdout, stderr = scv(t, env, "--cache", cache, "--offline", "predict", model, "--data", data, "--out", fast,
		"--runtime", "builtin", "--gpus", "none", "--shard-size", "3", "--fast-scan")
	if code != 3 || !strings.Contains(stdout, "8 inputs in 3 shard(s): 7 ok, 1 failed, 0 pending") {
		t.Errorf("--fast-scan: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if fj, err := job.Load(fast); err != nil || fj.Inputs != 8 || fj.Bytes != 0 || j.Bytes == 0 {
		t.Errorf("--fast-scan job.json: %+v %v (bytes without it: %d)", fj, err, j.Bytes)
	}
	for rel, recs := range allResults(t, fast, 3) {
		if w := got[rel]; len(recs) != 1 || len(w) != 1 || recs[0].OK != w[0].OK || string(recs[0].Result) != string(w[0].Result) {
			t.Errorf("%s: --fast-scan %+v, without %+v", rel, recs, w)
		}
	}
}

// mkdir makes dir/name and returns it.
func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mkdir(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPredictAndRunShardUsage(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"predict without --data", nil, []string{"predict", "faces", "--out", dir}, "needs --data"},
		{"predict both shard flags", nil, []string{"predict", "faces", "--data", dir, "--out", dir, "--shards", "2", "--shard-size", "3"}, "either --shard-size or --shards"},
		{"predict fast scan with balanced shards", nil, []string{"predict", "faces", "--data", dir, "--out", dir + "/o", "--shards", "2", "--fast-scan"}, "needs the sizes"},
		{"submit fast scan with balanced shards", nil, []string{"submit", "faces", "--data", dir, "--out", dir + "/o", "--shards", "2", "--fast-scan"}, "needs the sizes"},
		{"predict data with a comma", nil, []string{"predict", "faces", "--data", mkdir(t, dir, "a,b"), "--out", dir + "/o"}, "--bind splits paths"},
		{"predict bad runtime", nil, []string{"predict", "faces", "--data", dir, "--out", dir, "--runtime", "docker"}, "unknown runtime"},
		{"submit bad runtime", nil, []string{"submit", "faces", "--data", dir, "--out", dir + "/s", "--runtime", "docker"}, "unknown runtime"},
		{"submit bad gpus", nil, []string{"submit", "faces", "--data", dir, "--out", dir + "/s", "--gpus", ","}, "--gpus"},
		{"predict bad gpus", nil, []string{"predict", "faces", "--data", dir, "--out", dir, "--gpus", ","}, "--gpus"},
		{"predict zero workers", nil, []string{"predict", "faces", "--data", dir, "--out", dir + "/o", "--workers", "0"}, "--workers 0: want at least 1"},
		{"predict zero item timeout", nil, []string{"predict", "faces", "--data", dir, "--out", dir + "/o", "--item-timeout", "0"}, "--item-timeout 0s: want more than 0"},
		{"predict zero shard size", nil, []string{"predict", "faces", "--data", dir, "--out", dir + "/o", "--shard-size", "0"}, "must be at least 1"},
		{"submit zero shards", nil, []string{"submit", "faces", "--data", dir, "--out", dir + "/o", "--shards", "0"}, "must be at least 1"},
		{"run-shard zero workers", nil, []string{"run-shard", statusJob(t, false), "--index", "0", "--workers", "0"}, "--workers 0"},
		{"collect into a shard's results", nil, []string{"collect", statusJob(t, false), "-o", "RESULT0"}, "is one of the job's own files; write it elsewhere"},
		{"collect -o named once", nil, []string{"collect", statusJob(t, false), "-o", "RESULT0"}, "scv-hpc: collect -o /"},
		{"report over job.json", nil, []string{"report", statusJob(t, false), "-o", "JOBJSON"}, "is one of the job's own files; write it elsewhere"},
		{"run-shard without index", []string{"SLURM_ARRAY_TASK_ID="}, []string{"run-shard", dir}, "needs --index"},
		{"run-shard bad env index", []string{"SLURM_ARRAY_TASK_ID=x"}, []string{"run-shard", dir}, "not a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			switch tt.args[len(tt.args)-1] { // the job's own files
			case "RESULT0":
				tt.args[len(tt.args)-1] = job.ResultFile(tt.args[1], 0)
			case "JOBJSON":
				tt.args[len(tt.args)-1] = filepath.Join(tt.args[1], "job.json")
			}
			code, _, stderr := scv(t, tt.env, tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tt.want)
			}
		})
	}
	// A directory that is not a job: an error naming it (exit 1).
	code, _, stderr := scv(t, nil, "run-shard", dir, "--index", "0")
	if code != 1 || !strings.Contains(stderr, "not a job directory") {
		t.Errorf("run-shard on a non-job: exit %d %q", code, stderr)
	}
}
