package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/results"
	"github.com/scivision-hpc/scv-hpc/internal/sharding"
)

// oddModel is a predict-protocol-v1 model, run by python3, that misbehaves in the
// way argv[1] names. Every answer it means carries {"path": the request's path}, so a
// result stored under the wrong input shows.
const oddModel = `import json, os, select, sys
mode = sys.argv[1]
out = sys.stdout.buffer
def w(b):
    out.write(b + b"\n"); out.flush()
def ans(i, p, tag="real"):
    w(json.dumps({"id": i, "ok": True, "result": {"path": p, "tag": tag}}).encode())
hello = b'{"scv":1,"ready":true,"model":"odd","max_batch":4}'
if mode == "garbage":
    # One write, so that the runner reads the early answers and the handshake together.
    w(b"\n".join([b"Loading checkpoint shards: 100%", b"\xff\xfe not utf-8 \x00 at all", b"x" * 300000,
                  b'{"progress":0.5}', b'{"scv":1,"ready":', b'{"id":"1","ok":true,"result":{"path":"/data/early","tag":"early"}}',
                  b'{"batch":[{"id":"2","ok":true,"result":{"path":"/data/early","tag":"early"}}]}', hello]))
else:
    w(hello)
buf = b""
def requests(block):
    global buf
    while True:
        r, _, _ = select.select([0], [], [], None if block else 0.05)
        if not r:
            return
        chunk = os.read(0, 65536)
        if not chunk:
            sys.exit(0)
        buf += chunk
        block = False
while True:
    requests(True)
    lines, _, buf = buf.rpartition(b"\n")
    reqs = []
    for line in lines.split(b"\n"):
        if line:
            m = json.loads(line)
            reqs += m.get("batch", [m])
    if mode == "reverse":
        reqs.reverse()
    for r in reqs:
        i, p = r["id"], r["path"]
        if mode == "unknown":
            w(json.dumps({"id": str(int(i) + 1000000), "ok": True, "result": {"path": "/data/never", "tag": "unknown"}}).encode())
            w(b'{"id":"18446744073709551615","ok":false,"error":"never asked"}')
            w(b'{"id":"0","ok":true,"result":{"path":"/data/never","tag":"unknown"}}')
        ans(i, p)
        if mode == "twice":
            ans(i, p, "second")
            w(json.dumps({"id": i, "ok": False, "error": "third"}).encode())
`

// TestHeldOddModels: a model that prints garbage (and answers) before its handshake,
// answers ids never asked, answers every id twice or answers out of order still gets
// exactly one result per input, the first answer to the id asked, under the right
// input, with no restart and no failure.
func TestHeldOddModels(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	script := filepath.Join(t.TempDir(), "odd.py")
	if err := os.WriteFile(script, []byte(oddModel), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"garbage", "unknown", "twice", "reverse"} {
		t.Run(mode, func(t *testing.T) {
			paths := inputNames(40)
			dir := makeJob(t, paths, "python3", "-u", script, mode)
			o := testOptions(2)
			o.Override.ItemTimeout = set(time.Hour)
			st, err := runWithin(t, time.Minute, dir, o)
			if err != nil {
				t.Fatal(err)
			}
			for p, r := range exactlyOnce(t, readResults(t, dir, 0), paths) {
				var res struct{ Path, Tag string }
				if !r.OK || json.Unmarshal(r.Result, &res) != nil || res.Path != "/data/"+p || res.Tag != "real" {
					t.Errorf("%s: %+v (result %s), want ok with the model's first answer for it", p, r, r.Result)
				}
			}
			if st.OK != int64(len(paths)) || st.Failed != 0 || st.Restarts != 0 {
				t.Errorf("stats %+v, want %d ok, no failure, no restart", st, len(paths))
			}
			checkPythonReads(t, job.ResultFile(dir, 0))
		})
	}
}

// TestHeldOddNamesEndToEnd: data file names with tabs, quotes, $, backticks,
// backslashes, non-ASCII and 255 bytes go through scan → shards → run → results →
// collect as exactly one result line each, the model seeing each name as it is; names
// that cannot be one line (a newline, bytes that are not UTF-8), a FIFO named .png,
// symlink loops and a directory link are reported at scan time, never run, and the
// scan does not hang on them.
func TestHeldOddNamesEndToEnd(t *testing.T) {
	model := testModel(t)
	data := filepath.Join(t.TempDir(), "data")
	long := strings.Repeat("L", 251) + ".png" // 255 bytes, the most a name may have
	odd := []string{
		"tab\there.png", `quote"s.png`, "it's.png", "$HOME.png", "$(touch pwned).png",
		"`touch pwned2`.png", `back\slash.png`, "ünï cødé.png", " lead and trail .png",
		"-dash.png", "semi;colon&amp|pipe.png", "sub dir/$x `y` \"z\".png", long,
		"sub dir/" + long,
	}
	unrunnable := map[string]string{"new\nline.png": "line break", "bad\xff.png": "UTF-8"}
	for _, rel := range odd {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(data, rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(data, rel), []byte(rel), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for rel := range unrunnable {
		if err := os.WriteFile(filepath.Join(data, rel), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Files that must be reported, not opened: opening a FIFO blocks for ever.
	if err := syscall.Mkfifo(filepath.Join(data, "pipe.png"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, l := range [][2]string{{"loop1.png", "loop2.png"}, {"loop2.png", "loop1.png"}, {"sub dir/up", ".."}} {
		if err := os.Symlink(l[1], filepath.Join(data, l[0])); err != nil {
			t.Fatal(err)
		}
	}
	unrunnable["pipe.png"], unrunnable["loop1.png"], unrunnable["loop2.png"], unrunnable["sub dir/up/"] = "fifo", "loop", "loop", "directory"

	dir := t.TempDir()
	skipped := map[string]string{}
	type scanned struct {
		sum sharding.Summary
		err error
	}
	done := make(chan scanned, 1)
	go func() {
		sum, err := sharding.WriteShards(context.Background(), dir, data, sharding.ScanOptions{
			OnSkip: func(rel, reason string) { skipped[rel] = reason },
		}, sharding.Plan{ShardSize: 4})
		done <- scanned{sum, err}
	}()
	var sum sharding.Summary
	select {
	case s := <-done:
		if sum = s.sum; s.err != nil {
			t.Fatal(s.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the scan did not end within 30s (a FIFO opened, a symlink loop followed?)")
	}
	for rel, why := range unrunnable {
		if !strings.Contains(skipped[rel], why) {
			t.Errorf("%q: skipped as %q, want a report naming %q", rel, skipped[rel], why)
		}
	}
	if sum.Inputs != int64(len(odd)) || len(skipped) != len(unrunnable) {
		t.Fatalf("scan: %+v, skipped %q; want %d inputs and %d skipped", sum, skipped, len(odd), len(unrunnable))
	}
	j := &job.Job{Model: "testmodel", SIF: filepath.Join(data, "model.sif"), Predict: []string{model, "-max-batch", "3"},
		DataRoot: data, Shards: sum.Shards, Inputs: sum.Inputs, Run: job.DefaultRunOptions()}
	if err := job.Save(dir, j); err != nil {
		t.Fatal(err)
	}
	shards := make([]int, sum.Shards)
	var recs []results.Record
	for i := range shards {
		shards[i] = i
	}
	o := testOptions(2)
	if _, err := RunJob(context.Background(), dir, nil, shards, o); err != nil {
		t.Fatal(err)
	}
	for i := range shards {
		recs = append(recs, readResults(t, dir, i)...)
		checkPythonReads(t, job.ResultFile(dir, i))
	}
	for p, r := range exactlyOnce(t, recs, odd) {
		var res struct{ Path string }
		if !r.OK || json.Unmarshal(r.Result, &res) != nil || res.Path != path.Join("/data", p) {
			t.Errorf("%q: %+v (result %s), want ok with the model seeing /data/%s", p, r, r.Result, p)
		}
	}

	var out bytes.Buffer
	tot, err := results.Collect(context.Background(), dir, &out, results.FormatJSONL)
	if err != nil {
		t.Fatal(err)
	}
	if tot.OK != int64(len(odd)) || tot.Failed != 0 || tot.Pending != 0 {
		t.Errorf("collect totals %+v, want %d ok", tot, len(odd))
	}
	seen := map[string]int{}
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var r struct{ Path string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("collect line %q: %v", line, err)
		}
		seen[r.Path]++
	}
	for _, rel := range odd {
		if seen[rel] != 1 {
			t.Errorf("%q: %d collected lines, want 1", rel, seen[rel])
		}
	}
	if len(seen) != len(odd) {
		t.Errorf("%d distinct collected paths for %d inputs", len(seen), len(odd))
	}
	collected := filepath.Join(t.TempDir(), "all.jsonl")
	if err := os.WriteFile(collected, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	checkPythonReads(t, collected)
}

// TestHeldSignalThenResume: a runner process stopped by SIGTERM (it ends on its own,
// exit 7) or SIGKILL mid-run, whose results file then gets a torn last line (a write
// cut off by a crash or a full disk), is resumed: every input ends with exactly one
// whole result line, none of them the torn one, and Python reads the file.
func TestHeldSignalThenResume(t *testing.T) {
	model := testModel(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			paths := inputNames(1500)
			dir := makeJob(t, paths, model, "-delay", "500us", "-max-batch", "4")
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "RUNNER_SIGTERM_JOB="+dir, "TMPDIR="+t.TempDir())
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for len(readResults(t, dir, 0)) < 100 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			cmd.Process.Signal(sig)
			err := cmd.Wait()
			var ee *exec.ExitError
			if sig == syscall.SIGTERM && (!errors.As(err, &ee) || ee.ExitCode() != 7) {
				t.Fatalf("runner ended with %v after SIGTERM, want the cancelled exit 7; stderr:\n%s", err, stderr.String())
			}
			n := len(readResults(t, dir, 0))
			if n == 0 || n >= len(paths) {
				t.Fatalf("%d result lines: the run was not stopped mid-way", n)
			}
			// A torn line naming an input not yet done: it must not count as its result.
			pending := paths[len(paths)-1]
			f, err := os.OpenFile(job.ResultFile(dir, 0), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString(`{"path":"` + pending + `","ok":true,"result":{"path":"/data/` + pending + `","tor`); err != nil {
				t.Fatal(err)
			}
			f.Close()

			if _, err := runWithin(t, time.Minute, dir, testOptions(2)); err != nil {
				t.Fatal(err)
			}
			for p, r := range exactlyOnce(t, readResults(t, dir, 0), paths) {
				var res struct{ Path string }
				if !r.OK || json.Unmarshal(r.Result, &res) != nil || res.Path != "/data/"+p {
					t.Errorf("%s: %+v (result %s)", p, r, r.Result)
				}
			}
			checkPythonReads(t, job.ResultFile(dir, 0))
		})
	}
}

// TestHeld20kSmallFiles: 20,000 small files go through scan → shards → run with two
// workers as exactly one ok result each, the model seeing each path.
func TestHeld20kSmallFiles(t *testing.T) {
	const n = 20_000
	model := testModel(t)
	data := filepath.Join(t.TempDir(), "data")
	var want []string
	for i := range n {
		rel := filepath.Join("d"+strconv.Itoa(i%20), "f"+strconv.Itoa(i)+".png")
		if i < 20 {
			if err := os.MkdirAll(filepath.Join(data, filepath.Dir(rel)), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(data, rel), []byte{byte(i)}, 0o644); err != nil {
			t.Fatal(err)
		}
		want = append(want, rel)
	}
	dir := t.TempDir()
	sum, err := sharding.WriteShards(context.Background(), dir, data, sharding.ScanOptions{}, sharding.Plan{ShardSize: 6000})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Inputs != n || sum.Shards != 4 || sum.Bytes != n || sum.Skipped != 0 {
		t.Fatalf("scan: %+v, want %d inputs of one byte in 4 shards", sum, n)
	}
	j := &job.Job{Model: "testmodel", SIF: filepath.Join(data, "model.sif"), Predict: []string{model, "-max-batch", "64"},
		DataRoot: data, Shards: sum.Shards, Inputs: sum.Inputs, Run: job.DefaultRunOptions()}
	if err := job.Save(dir, j); err != nil {
		t.Fatal(err)
	}
	st, err := RunJob(context.Background(), dir, nil, []int{0, 1, 2, 3}, testOptions(2))
	if err != nil {
		t.Fatal(err)
	}
	if st.OK != n || st.Failed != 0 {
		t.Errorf("stats %+v, want %d ok", st, n)
	}
	var recs []results.Record
	for i := range 4 {
		recs = append(recs, readResults(t, dir, i)...)
	}
	for p, r := range exactlyOnce(t, recs, want) {
		var res struct{ Path string }
		if !r.OK || json.Unmarshal(r.Result, &res) != nil || res.Path != "/data/"+p {
			t.Errorf("%s: %+v (result %s)", p, r, r.Result)
		}
	}
}
