// Package opencvfaces_test runs the OpenCV face-detection example end to end: the image
// built without Docker by scripts/build-opencv-image.sh (a Debian root filesystem with
// python3-opencv, the Scivision-shaped package and the predict adapter), pushed to a
// loopback registry, pulled, converted to SIF and run by the real scv-hpc binary with
// the builtin runtime over real photos.
package opencvfaces_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/scivision-hpc/scv-hpc/internal/convert"
	"github.com/scivision-hpc/scv-hpc/internal/fetch"
	"github.com/scivision-hpc/scv-hpc/internal/registry"
	"github.com/scivision-hpc/scv-hpc/internal/results"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

var (
	buildOnce   sync.Once
	builtLayout string
	buildErr    string
)

// buildImage runs scripts/build-opencv-image.sh once per test process and returns the
// OCI layout it wrote. The script caches the root filesystem and the image under
// <repo>/.cache/opencv-image keyed by their inputs, so only the first run is slow.
func buildImage(t testing.TB) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("building the OpenCV image needs root (debootstrap); 'make test' runs it as root")
	}
	testenv.Need(t, "debootstrap", "mksquashfs", "unsquashfs")
	bin := testenv.Binary(t)
	buildOnce.Do(func() {
		root := testenv.RepoRoot(t)
		cmd := exec.Command("bash", filepath.Join(root, "scripts", "build-opencv-image.sh"))
		cmd.Env = append(os.Environ(), "SCV_HPC="+bin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			buildErr = err.Error() + "\n" + stderr.String()
			return
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		builtLayout = lines[len(lines)-1]
	})
	if buildErr != "" {
		t.Fatalf("scripts/build-opencv-image.sh: %s", buildErr)
	}
	return builtLayout
}

// layoutImage opens the image tagged "latest" in an OCI layout.
func layoutImage(t testing.TB, dir string) v1.Image {
	t.Helper()
	img, _, err := registry.Open(context.Background(), "oci-layout:"+dir+":latest", registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

type box struct{ X, Y, Width, Height int }

// readResults reads every result file of the run at out: the final record of each input.
func readResults(t *testing.T, out string) map[string]results.Record {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(out, "results", "*.jsonl"))
	if len(files) == 0 {
		t.Fatalf("no results in %s/results", out)
	}
	got := map[string]results.Record{}
	for _, f := range files {
		recs, err := results.Final(f)
		if err != nil {
			t.Fatal(err)
		}
		for p, r := range recs {
			got[p] = r
		}
	}
	return got
}

func TestOpenCVFacesEndToEnd(t *testing.T) {
	img := layoutImage(t, buildImage(t))
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if want := "python3 /opt/scv/scv_adapter.py --model-dir /opt/scv/model"; cf.Config.Labels[fetch.PredictLabel] != want {
		t.Errorf("label %s = %q, want %q", fetch.PredictLabel, cf.Config.Labels[fetch.PredictLabel], want)
	}

	ref := testenv.StartRegistry(t) + "/scivision/opencv-faces:1.0"
	testenv.Push(t, img, ref)

	samples := testenv.SampleImages(t)
	data := t.TempDir()
	for _, n := range testenv.SampleNames {
		b, err := os.ReadFile(filepath.Join(samples, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(data, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A file that is not an image: that input fails, the others go on.
	if err := os.WriteFile(filepath.Join(data, "broken.png"), []byte("not a png at all"), 0o644); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "run")
	cache := filepath.Join(t.TempDir(), "cache")
	cmd := exec.Command(testenv.Binary(t), "--cache", cache, "--log-format", "json",
		"predict", ref, "--data", data, "--out", out, "--runtime", "builtin", "--workers", "2")
	// The builtin runtime unpacks the image (~700 MB) under TMPDIR: keep it in the test's
	// own directory so that it goes away with the test.
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	err = cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if code != 3 {
		t.Fatalf("scv-hpc predict exit code %d (%v), want 3 (finished, one input failed)\n%s", code, err, tail(stderr.String(), 4000))
	}

	got := readResults(t, out)
	if len(got) != len(testenv.SampleNames)+1 {
		t.Errorf("%d results, want %d: %v", len(got), len(testenv.SampleNames)+1, got)
	}
	faces := map[string][]box{}
	for _, n := range testenv.SampleNames {
		r, ok := got[n]
		if !ok || !r.OK {
			t.Errorf("%s: %+v, want ok", n, r)
			continue
		}
		var bs []box
		if err := json.Unmarshal(r.Result, &bs); err != nil {
			t.Errorf("%s: result %s is not a list of boxes: %v", n, r.Result, err)
		}
		faces[n] = bs
		t.Logf("%-14s %d face(s) %v", n, len(bs), bs)
	}
	for _, n := range []string{"astronaut.png", "messi5.jpg"} {
		if len(faces[n]) == 0 {
			t.Errorf("%s: no face found, want at least one", n)
		}
	}
	if len(faces["chelsea.png"]) != 0 {
		t.Errorf("chelsea.png (a cat): %d faces found, want none: %v", len(faces["chelsea.png"]), faces["chelsea.png"])
	}
	// The astronaut's face is in the upper middle of the 512x512 photo.
	if bs := faces["astronaut.png"]; len(bs) > 0 {
		cx, cy := bs[0].X+bs[0].Width/2, bs[0].Y+bs[0].Height/2
		if cx < 128 || cx > 384 || cy < 32 || cy > 256 || bs[0].Width < 40 {
			t.Errorf("astronaut.png: largest face %+v is not where her face is", bs[0])
		}
	}
	if r := got["broken.png"]; r.OK || !strings.Contains(r.Error, "cannot decode image") {
		t.Errorf("broken.png: %+v, want a failure that says the image cannot be decoded", r)
	}

	t.Run("adapter failures", func(t *testing.T) { adapterFailures(t, ref, cache) })
}

// adapterFailures runs other Scivision-shaped models in the same image (the model
// packages sit in a hidden directory of the data, which the scan leaves out, and a
// catalog points the adapter at them): one that prints to stdout while loading and
// raises on one input, and one whose import fails.
func adapterFailures(t *testing.T, ref, cache string) {
	data := t.TempDir()
	for _, n := range []string{"a.png", "bad.png", "c.png"} {
		if err := os.WriteFile(filepath.Join(data, n), []byte("any bytes: the model gets the path"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	model := func(dir, src string) {
		yml := "name: " + dir + "\nimport: " + dir + "\nmodel: M\nprediction_fn:\n  call: predict\n  args:\n    X: image\n"
		root := filepath.Join(data, ".models", dir)
		if err := os.MkdirAll(filepath.Join(root, ".scivision"), 0o755); err != nil {
			t.Fatal(err)
		}
		if os.WriteFile(filepath.Join(root, ".scivision", "model.yml"), []byte(yml), 0o644) != nil ||
			os.WriteFile(filepath.Join(root, dir+".py"), []byte(src), 0o644) != nil {
			t.Fatal("write model")
		}
	}
	model("noisy_mod", `import os
print("loading noisy_mod: hello stdout")
os.write(1, b"raw fd 1 at import\n")

class M:
    def predict(self, image):
        print("predicting", image)
        name = os.path.basename(str(image))
        if name == "bad.png":
            raise ValueError("cannot classify " + name)
        return {"name": name}
`)
	model("broken_mod", "print('stdout noise')\nimport definitely_not_installed_xyz\n")
	catalog := filepath.Join(t.TempDir(), "catalog.yaml")
	entry := func(name, dir string) string {
		return "  - name: " + name + "\n    image: " + ref + "\n    predict: python3 /opt/scv/scv_adapter.py --input path --model-dir /data/.models/" + dir + "\n"
	}
	if err := os.WriteFile(catalog, []byte("models:\n"+entry("noisy", "noisy_mod")+entry("broken", "broken_mod")), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(name string) (int, string, string) {
		out := filepath.Join(t.TempDir(), name)
		cmd := exec.Command(testenv.Binary(t), "--cache", cache, "--catalog", catalog, "--log-format", "json",
			"predict", name, "--data", data, "--out", out, "--runtime", "builtin")
		cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		cmd.Run()
		return cmd.ProcessState.ExitCode(), out, stderr.String()
	}

	code, out, stderr := run("noisy")
	got := readResults(t, out)
	if code != 3 || len(got) != 3 {
		t.Fatalf("noisy model: exit %d, %d results, want 3 and 3\n%s", code, len(got), tail(stderr, 3000))
	}
	for n, r := range got {
		if n == "bad.png" {
			if r.OK || !strings.Contains(r.Error, "ValueError: cannot classify bad.png") {
				t.Errorf("%s: %+v, want the model's exception", n, r)
			}
			continue
		}
		if !r.OK || string(r.Result) != `{"name":"`+n+`"}` {
			t.Errorf("%s: %+v (stdout noise in the protocol?)", n, r)
		}
	}

	code, out, stderr = run("broken")
	if code != 1 || !strings.Contains(stderr, "stage load") ||
		!strings.Contains(stderr, "ModuleNotFoundError: No module named 'definitely_not_installed_xyz'") {
		t.Errorf("broken model: exit %d, want 1 and a load failure with the traceback's last line\n%s", code, tail(stderr, 3000))
	}
	files, _ := filepath.Glob(filepath.Join(out, "results", "*.jsonl"))
	for _, f := range files {
		if b, _ := os.ReadFile(f); len(b) != 0 {
			t.Errorf("a model that cannot load failed its inputs one by one: %s", b)
		}
	}
}

// BenchmarkConvertOpenCV converts the ~850 MB (unpacked) OpenCV image to a SIF: the
// realistic case for conversion speed (layer flattening, /.singularity.d, mksquashfs).
func BenchmarkConvertOpenCV(b *testing.B) {
	img := layoutImage(b, buildImage(b))
	digest, err := img.Digest()
	if err != nil {
		b.Fatal(err)
	}
	var unpacked int64
	layers, _ := img.Layers()
	for _, l := range layers {
		if rc, err := l.Uncompressed(); err == nil {
			n, _ := io.Copy(io.Discard, rc)
			unpacked += n
			rc.Close()
		}
	}
	dir := b.TempDir()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dst := filepath.Join(dir, "opencv.sif")
		prov := convert.Provenance{Ref: "oci-layout:opencv-faces", Digest: digest.String(), Tool: "bench", Platform: "linux/amd64"}
		if err := convert.Convert(context.Background(), img, dst, prov, convert.Options{TmpDir: dir}); err != nil {
			b.Fatal(err)
		}
		st, err := os.Stat(dst)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(st.Size())/1e6, "SIF-MB")
		os.Remove(dst)
	}
	b.ReportMetric(float64(unpacked)/1e6, "layer-tar-MB")
	b.ReportMetric(float64(unpacked)/1e6/(b.Elapsed().Seconds()/float64(b.N)), "MB/s")
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
