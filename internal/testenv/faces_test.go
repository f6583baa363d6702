package testenv_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/imagebuild"
	"github.com/scivision-hpc/scv-hpc/internal/registry"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// TestFacesImageThroughRealRegistry pushes the demo model image to Debian's
// docker-registry and opens it back through internal/registry.
func TestFacesImageThroughRealRegistry(t *testing.T) {
	host := testenv.StartRegistry(t)
	img := testenv.FacesImage(t)
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	ref := host + "/scivision/faces:1.0"
	ctx := context.Background()
	if err := imagebuild.Push(ctx, img, ref, registry.Options{}); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	for _, r := range []string{ref, host + "/scivision/faces@" + want.String()} {
		got, src, err := registry.Open(ctx, r, registry.Options{})
		if err != nil {
			t.Fatalf("open %s: %v", r, err)
		}
		if src.Digest != want.String() || src.Platform != "linux/amd64" {
			t.Errorf("open %s: %+v, want digest %s linux/amd64", r, src, want)
		}
		cf, err := got.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Config.Labels["org.scivision.predict"] != testenv.FacesBinaryPath ||
			strings.Join(cf.Config.Entrypoint, " ") != testenv.FacesBinaryPath {
			t.Errorf("config %+v", cf.Config)
		}
	}
	// A tag the real registry does not have is reported as such.
	if _, _, err := registry.Open(ctx, host+"/scivision/faces:9.9", registry.Options{}); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("missing tag: %v, want ErrNotFound", err)
	}
	// The same image built twice has the same digest (the Makefile relies on it).
	again := testenv.FacesImage(t)
	if d, _ := again.Digest(); d != want {
		t.Errorf("rebuilt faces image digest %s, want %s", d, want)
	}
}

// TestFacesBinaryProtocol runs the built model as a real process on the sample images.
func TestFacesBinaryProtocol(t *testing.T) {
	bin := testenv.FacesBinary(t)
	samples := testenv.SampleImages(t)
	cmd := exec.Command(bin, "-cascade", testenv.FacesCascade(t))
	var input strings.Builder
	var batch []string
	for i, n := range testenv.SampleNames {
		batch = append(batch, fmt.Sprintf(`{"id":"%d","path":%q}`, i, filepath.Join(samples, n)))
	}
	input.WriteString(`{"batch":[` + strings.Join(batch, ",") + "]}\n")
	cmd.Stdin = strings.NewReader(input.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("faces: %v", err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	var lines []map[string]any
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 1+len(testenv.SampleNames) || lines[0]["ready"] != true {
		t.Fatalf("output %s", out)
	}
	counts := map[string]float64{}
	for i, n := range testenv.SampleNames {
		a := lines[1+i]
		if a["ok"] != true || a["id"] != fmt.Sprint(i) {
			t.Fatalf("answer for %s: %v", n, a)
		}
		counts[n] = a["result"].(map[string]any)["count"].(float64)
	}
	if counts["astronaut.png"] != 1 || counts["messi5.jpg"] != 1 || counts["coins.png"] != 0 || counts["chelsea.png"] != 0 {
		t.Errorf("face counts %v", counts)
	}
}
