package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// SampleNames are the real sample images SampleImages provides: five from Debian's
// python3-skimage, messi5.jpg from opencv-doc.
var SampleNames = []string{"astronaut.png", "camera.png", "coins.png", "chelsea.png", "coffee.png", "messi5.jpg"}

var samplesMu sync.Mutex

// SampleImages returns a directory holding the six sample images (SampleNames). They
// are fetched once by scripts/sample-images.sh (apt-get download + dpkg-deb -x, nothing
// installed) into <repo>/.cache/samples, so later runs need no network.
// Tests must not modify the files; copy them first.
func SampleImages(t testing.TB) string {
	t.Helper()
	samplesMu.Lock()
	defer samplesMu.Unlock()
	root := RepoRoot(t)
	dir := filepath.Join(root, ".cache", "samples")
	if haveSamples(dir) {
		return dir
	}
	Need(t, "apt-get", "dpkg-deb")
	cmd := exec.Command("sh", filepath.Join(root, "scripts", "sample-images.sh"), dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fetch sample images with scripts/sample-images.sh %s: %v\n%s", dir, err, out)
	}
	if !haveSamples(dir) {
		t.Fatalf("scripts/sample-images.sh %s finished but the sample images are not all there", dir)
	}
	return dir
}

func haveSamples(dir string) bool {
	for _, n := range SampleNames {
		if fi, err := os.Stat(filepath.Join(dir, n)); err != nil || fi.Size() == 0 {
			return false
		}
	}
	return true
}
