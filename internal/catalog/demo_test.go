package catalog

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// TestEmbeddedEntriesPointAtDemoImages checks that every model of the embedded catalog
// is an image that 'make demo' builds and pushes (scripts/demo.sh), at the same
// registry port, repository and tag, so that 'scv-hpc pull faces' works after it.
func TestEmbeddedEntriesPointAtDemoImages(t *testing.T) {
	script, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "scripts", "demo.sh"))
	if err != nil {
		t.Fatal(err)
	}
	port := regexp.MustCompile(`(?m)^port=(\d+)\b`).FindSubmatch(script)
	if port == nil {
		t.Fatal("scripts/demo.sh sets no registry port (port=N)")
	}
	pushed := map[string]bool{}
	for _, m := range regexp.MustCompile(`--push "([^"]+)"`).FindAllSubmatch(script, -1) {
		pushed[strings.ReplaceAll(string(m[1]), "$port", string(port[1]))] = true
	}
	if len(pushed) == 0 {
		t.Fatal("scripts/demo.sh pushes no image (--push \"REF\")")
	}
	entries, err := Parse(defaultYAML, defaultSource)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !pushed[e.Image] {
			t.Errorf("embedded model %s points at %s, which the demo does not push (it pushes %v)", e.ID(), e.Image, keys(pushed))
		}
	}

	// The image the demo builds is the faces model the catalog describes.
	cf, err := testenv.FacesImage(t).ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	faces, err := (&Catalog{byName: map[string][]*Entry{}}).withEntries(entries).Lookup("faces")
	if err != nil {
		t.Fatal(err)
	}
	if title := cf.Config.Labels["org.opencontainers.image.title"]; title != faces.Name || !strings.HasSuffix(faces.Image, "/scivision/"+title+":"+faces.Version) {
		t.Errorf("the demo image is titled %q; the catalog's faces is %s at %s", title, faces.ID(), faces.Image)
	}
	if cf.Config.Labels["org.scivision.predict"] == "" && len(faces.Predict) == 0 {
		t.Error("neither the demo image nor the catalog names the predict command")
	}
	if faces.GPU || cf.Architecture != "amd64" {
		t.Errorf("faces: gpu %v, image arch %s; want a CPU model for amd64", faces.GPU, cf.Architecture)
	}
}

func (c *Catalog) withEntries(es []Entry) *Catalog {
	c.merge(es)
	return c
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
