package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/results"
)

func TestParseAnswer(t *testing.T) {
	tests := []struct {
		raw   string
		shape string
		boxes int
		label string
	}{
		{`{"width":512,"height":512,"faces":[{"x":170,"y":57,"size":111,"score":79}],"count":1}`, ShapeBoxes, 1, ""},
		{`{"width":10,"faces":[],"count":0}`, ShapeBoxes, 0, ""},
		{`[{"x":1,"y":2,"width":3,"height":4},{"x":1,"y":2,"w":3,"h":4}]`, ShapeBoxes, 2, ""},
		{`{"zz":[{"x":1,"y":2,"width":3,"height":4}]}`, ShapeBoxes, 1, ""},
		{`"cat"`, ShapeLabels, 0, "cat"},
		{`{"label":"dog","score":0.9}`, ShapeLabels, 0, "dog"},
		{`{"class":"<script>"}`, ShapeLabels, 0, "<script>"},
		{`3.5`, ShapeNumber, 0, ""},
		{`[1,2,3]`, ShapeOther, 0, ""},
		{`[{"x":1,"y":2}]`, ShapeOther, 0, ""},
		{`{"npy":"/out/a.npy","shape":[3,4]}`, ShapeOther, 0, ""},
		{`not json`, ShapeOther, 0, ""},
		{``, ShapeOther, 0, ""},
		{`[]`, ShapeOther, 0, ""},
	}
	for _, tc := range tests {
		a := ParseAnswer([]byte(tc.raw))
		if a.Shape != tc.shape || len(a.Boxes) != tc.boxes || a.Label != tc.label {
			t.Errorf("%s: %+v, want %s with %d boxes, label %q", tc.raw, a, tc.shape, tc.boxes, tc.label)
		}
	}
	many := `[` + strings.Repeat(`{"x":1,"y":1,"size":1},`, 5000) + `{"x":1,"y":1,"size":1}]`
	if a := ParseAnswer([]byte(many)); len(a.Boxes) != maxBoxes {
		t.Errorf("%d boxes kept, want the cap %d", len(a.Boxes), maxBoxes)
	}
}

func FuzzParseAnswer(f *testing.F) {
	f.Add([]byte(`{"faces":[{"x":1,"y":2,"size":3}]}`))
	f.Add([]byte(`{"label":"x"}`))
	f.Add([]byte(`[{"x":1e308,"y":-1e308,"width":1e308,"height":1}]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		a := ParseAnswer(raw)
		if len(a.Boxes) > maxBoxes {
			t.Fatal("box cap exceeded")
		}
	})
}

func TestReservoir(t *testing.T) {
	run := func(seed uint64, n int) []int {
		r := NewReservoir[int](10, seed)
		for i := 0; i < n; i++ {
			r.Offer(func() int { return i })
		}
		return r.Items
	}
	if got := run(1, 5); fmt.Sprint(got) != "[0 1 2 3 4]" {
		t.Errorf("short stream: %v", got)
	}
	a, b := run(7, 100_000), run(7, 100_000)
	if fmt.Sprint(a) != fmt.Sprint(b) || len(a) != 10 {
		t.Errorf("not reproducible: %v vs %v", a, b)
	}
	if fmt.Sprint(a) == fmt.Sprint(run(8, 100_000)) {
		t.Errorf("seed ignored")
	}
	// Uniform: over many runs each of 20 items is kept about half the time.
	hits := make([]int, 20)
	for seed := uint64(0); seed < 2000; seed++ {
		for _, v := range run(seed, 20) {
			hits[v]++
		}
	}
	for i, h := range hits {
		if h < 850 || h > 1150 {
			t.Errorf("item %d kept %d times of 2000, want about 1000", i, h)
		}
	}
}

func TestExtremes(t *testing.T) {
	most := NewExtremes(3, true, func(v int) int { return v })
	fewest := NewExtremes(3, false, func(v int) int { return v })
	for _, v := range []int{5, 1, 9, 3, 9, 7, 0, 2} {
		most.Offer(v)
		fewest.Offer(v)
	}
	if fmt.Sprint(most.Items) != "[9 9 7]" || fmt.Sprint(fewest.Items) != "[0 1 2]" {
		t.Errorf("most %v fewest %v", most.Items, fewest.Items)
	}
}

func TestBinValues(t *testing.T) {
	bins := binValues([]float64{0, 1, 2, 3, 9.99, 10}, 0, 10, 5, 2)
	want := []float64{4, 4, 0, 0, 4}
	for i, b := range bins {
		if b.Value != want[i] {
			t.Errorf("bin %d (%s) = %v, want %v", i, b.Label, b.Value, want[i])
		}
	}
	if b := binValues([]float64{3, 3}, 3, 3, 5, 1); len(b) != 1 || b[0].Value != 2 {
		t.Errorf("one value: %+v", b)
	}
}

// TestSVGEscaping: labels from a model come out as text in every chart.
func TestSVGEscaping(t *testing.T) {
	evil := `<script>alert(1)</script>"&'`
	for name, svg := range map[string]string{
		"bars":      string(BarChart(evil, []Bar{{Label: evil, Value: 3}})),
		"histogram": string(Histogram(evil, evil, []Bar{{Label: evil, Value: 1}})),
		"timeline":  string(Timeline([]Span{{Label: evil, Start: 0, End: 1, State: evil, Description: evil}}, 2)),
	} {
		if strings.Contains(svg, "<script") || strings.Contains(svg, `"&'`) {
			t.Errorf("%s: unescaped text: %s", name, svg)
		}
		if !strings.Contains(svg, "&lt;script&gt;") {
			t.Errorf("%s: label missing: %s", name, svg)
		}
	}
}

// hostileJob is a job whose data file names and answers carry markup.
func hostileJob(t *testing.T) (dir, data string) {
	t.Helper()
	data = t.TempDir()
	dir = t.TempDir()
	img := image.NewRGBA(image.Rect(0, 0, 400, 200))
	for i := range img.Pix {
		img.Pix[i] = 0x80
	}
	names := []string{"<script>alert(1).png", "ok.png", "broken.png", "gone.png", "fail\"<b>.png"}
	var buf bytes.Buffer
	png.Encode(&buf, img)
	os.WriteFile(filepath.Join(data, names[0]), buf.Bytes(), 0o644)
	os.WriteFile(filepath.Join(data, names[1]), buf.Bytes(), 0o644)
	os.WriteFile(filepath.Join(data, names[2]), []byte("not an image"), 0o644)
	os.WriteFile(filepath.Join(data, names[4]), buf.Bytes(), 0o644)
	j := &job.Job{Model: "<script>m</script>", Digest: "sha256:00", Predict: []string{"/bin/<script>"}, DataRoot: data, Shards: 2, Inputs: 6,
		Run: job.RunOptions{Runtime: "builtin", GPUs: "none"}, Created: time.Unix(0, 0)}
	if err := job.Save(dir, j); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(job.ShardFile(dir, 0), []byte(names[0]+"\n"+names[1]+"\n"+names[2]+"\n"), 0o644)
	os.WriteFile(job.ShardFile(dir, 1), []byte(names[3]+"\n"+names[4]+"\n"+"pending.png\n"), 0o644)
	box := `{"faces":[{"x":100,"y":50,"size":60,"score":9,"note":"<script>alert(2)</script>"}],"count":1}`
	w, _ := results.OpenWriter(job.ResultFile(dir, 0))
	w.Write(results.Record{Path: names[0], OK: true, Result: json.RawMessage(box), T: 1000})
	w.Write(results.Record{Path: names[1], OK: true, Result: json.RawMessage(`{"faces":[],"count":0}`), T: 2000})
	w.Write(results.Record{Path: names[2], OK: true, Result: json.RawMessage(`{"faces":[],"count":0}`), T: 3000})
	w.Close()
	w, _ = results.OpenWriter(job.ResultFile(dir, 1))
	w.Write(results.Record{Path: names[3], OK: true, Result: json.RawMessage(box), T: 2500})
	w.Write(results.Record{Path: names[4], Error: "</pre><script>alert(3)</script>", Stage: results.StageCrash, T: 4000})
	w.Close()
	os.WriteFile(filepath.Join(job.LogsDir(dir), "worker-000001-0.log"), []byte("Traceback\n<script>alert(4)</script>\n"), 0o644)
	return dir, data
}

// TestWriteEscapesEverything: a path, an answer, an error, a log line and the model
// name holding <script> come out as text; undecodable and missing inputs are listed.
func TestWriteEscapesEverything(t *testing.T) {
	dir, _ := hostileJob(t)
	var buf bytes.Buffer
	st, err := Write(context.Background(), dir, &buf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	if n := strings.Count(strings.ToLower(page), "<script"); n != 0 {
		i := strings.Index(strings.ToLower(page), "<script")
		t.Fatalf("%d <script in the page, first at: %s", n, page[max(0, i-200):i+50])
	}
	for _, want := range []string{
		"&lt;script&gt;alert(1).png",         // the path
		"alert(2)",                           // inside the answer
		"&lt;/pre&gt;&lt;script&gt;alert(3)", // the error
		"&lt;script&gt;alert(4)",             // the worker log tail
		`content="default-src &#39;none&#39;; img-src data:; style-src &#39;unsafe-inline&#39;"`,
		"broken.png", "gone.png", "× crash", "data:image/jpeg;base64,",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if st.Totals != (results.Totals{Inputs: 6, OK: 4, Failed: 1, Pending: 1}) || st.Shape != ShapeBoxes {
		t.Errorf("stats %+v", st)
	}
	if st.NotShown != 2 { // broken.png (not an image) and gone.png (missing)
		t.Errorf("%d inputs not shown, want 2", st.NotShown)
	}
	if st.WallTime != 3*time.Second {
		t.Errorf("wall time %v, want 3s (first answer at 1s, last at 4s)", st.WallTime)
	}
}

// TestThumbnail: a downscaled copy, and inputs outside the root are refused.
func TestThumbnail(t *testing.T) {
	dir := t.TempDir()
	img := image.NewRGBA(image.Rect(0, 0, 400, 200))
	for i := range img.Pix {
		img.Pix[i] = 0x80
	}
	var buf bytes.Buffer
	png.Encode(&buf, img)
	os.WriteFile(filepath.Join(dir, "a.png"), buf.Bytes(), 0o644)
	th, err := MakeThumbnail(dir, "a.png")
	if err != nil {
		t.Fatal(err)
	}
	if th.Width != ThumbSize || th.Height != ThumbSize/2 || th.Scale != 0.5 {
		t.Fatalf("thumbnail %dx%d scale %v", th.Width, th.Height, th.Scale)
	}
	if b := decodeDataURI(t, th.DataURI).Bounds(); b.Dx() != th.Width || b.Dy() != th.Height {
		t.Errorf("decoded %v", b)
	}
	huge := image.NewGray(image.Rect(0, 0, 1, 1))
	buf.Reset()
	png.Encode(&buf, huge)
	b := buf.Bytes()
	// Claim 20000×20000 pixels in the header: refused before decoding.
	copy(b[16:24], []byte{0, 0, 0x4e, 0x20, 0, 0, 0x4e, 0x20})
	os.WriteFile(filepath.Join(dir, "huge.png"), b, 0o644)
	for _, rel := range []string{"../a.png", "/etc/passwd", "missing.png", "huge.png"} {
		if _, err := MakeThumbnail(dir, rel); !errors.Is(err, ErrNotShown) {
			t.Errorf("%s: %v", rel, err)
		}
	}
	os.Symlink("/etc/hostname", filepath.Join(dir, "out.png"))
	if _, err := MakeThumbnail(dir, "out.png"); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("link out of the root: %v", err)
	}
}

// TestGalleryBoxes: the boxes of an answer are drawn over its thumbnail, scaled.
func TestGalleryBoxes(t *testing.T) {
	dir, _ := hostileJob(t)
	var buf bytes.Buffer
	if _, err := Write(context.Background(), dir, &buf, Options{}); err != nil {
		t.Fatal(err)
	}
	// The 400×200 image becomes 200×100: the box (100,50) size 60 is (50,25) size 30.
	if !strings.Contains(buf.String(), `<rect x="50.0" y="25.0" width="30.0" height="30.0"/>`) {
		i := strings.Index(buf.String(), "viewBox=\"0 0 200 100\"")
		t.Errorf("scaled box missing: %s", buf.String()[max(0, i-100):max(0, i)+200])
	}
}

// TestSlurmNodesAndArrays: the nodes come from the batch script's start lines (a
// requeued shard lists both), the arrays from job.json.
func TestSlurmNodesAndArrays(t *testing.T) {
	dir, _ := hostileJob(t)
	j, _ := job.Load(dir)
	j.Slurm = &job.Slurm{Arrays: []job.Array{{JobID: "4242", Shards: []int{0, 1}}}}
	job.Save(dir, j)
	logs := map[string]string{
		"4242_0.out": "2026-11-29T01:00:00Z scv-hpc[4242_0 shard 0]: start node=n01 job_id=4243 gpus=0\n",
		"4242_1.out": "x scv-hpc[4242_1 shard 1]: start node=n02 job_id=1\ny scv-hpc[4242_1 shard 1]: start node=<n3> job_id=2\n",
	}
	for name, text := range logs {
		os.WriteFile(filepath.Join(job.LogsDir(dir), name), []byte(text), 0o644)
	}
	nodes := shardNodes(dir)
	if fmt.Sprint(nodes) != "map[0:[n01] 1:[n02 <n3>]]" {
		t.Errorf("nodes %v", nodes)
	}
	var buf bytes.Buffer
	if _, err := Write(context.Background(), dir, &buf, Options{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"4242 (2 tasks)", "&lt;n3&gt;, n01, n02", "<td>n02, &lt;n3&gt;</td>"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// TestWriteTo: the report goes to the file or stdout named; a name that is one of the
// job's own files is refused, and the job is left as it was.
func TestWriteTo(t *testing.T) {
	dir, _ := hostileJob(t)
	jobJSON, err := os.ReadFile(filepath.Join(dir, "job.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, out string
		err       error
	}{
		{"file in the job directory", filepath.Join(dir, "report.html"), nil},
		{"stdout", "-", nil},
		{"job.json", filepath.Join(dir, "job.json"), job.ErrOwnFile},
		{"a result file", job.ResultFile(dir, 0), job.ErrOwnFile},
		{"the job directory", dir, job.ErrOwnFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout bytes.Buffer
			st, err := WriteTo(context.Background(), dir, tc.out, &stdout, Options{})
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if now, _ := os.ReadFile(filepath.Join(dir, "job.json")); !bytes.Equal(now, jobJSON) {
				t.Fatal("job.json changed")
			}
			if tc.err != nil {
				return
			}
			page, where := stdout.Bytes(), "stdout"
			if tc.out != "-" {
				if page, err = os.ReadFile(tc.out); err != nil {
					t.Fatal(err)
				}
				where = tc.out
			}
			if st.Where != where || st.Totals.Inputs != 6 || !bytes.HasPrefix(page, []byte("<!DOCTYPE html>")) {
				t.Errorf("wrote %.40q to %s (stats %+v); want a page of 6 inputs in %s", page, st.Where, st, where)
			}
		})
	}
}
