package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

const modelsCatalog = `models:
  - name: plankton
    version: "1.9"
    image: registry.example.org/lab/plankton:1.9
    description: Plankton classifier
    tasks: [classification]
    gpu: true
    predict: "python3 -m plankton.serve --batch 16"
  - name: plankton
    version: "1.10"
    image: registry.example.org/lab/plankton:1.10
    deprecated: use plankton 2 from the site catalog
  - name: faces
    image: mirror.example.org/scivision/faces:1.0
    description: site mirror of the demo model
`

// TestModelsCommands lists a catalog made of the embedded one and a user file that adds
// models and overrides faces by name.
func TestModelsCommands(t *testing.T) {
	c := newCLI(t, modelsCatalog)
	out := c.ok("models")
	for _, re := range []string{
		`(?m)^NAME\s+VERSION\s+GPU\s+TASKS\s+CACHED\s+IMAGE$`,
		`(?m)^faces\s+-\s+no\s+-\s+no\s+mirror\.example\.org/scivision/faces:1\.0$`,
		`(?m)^plankton \(deprecated\)\s+1\.10\s+no\s+-\s+no\s+registry\.example\.org/lab/plankton:1\.10$`,
		`(?m)^plankton\s+1\.9\s+yes\s+classification\s+no\s+registry\.example\.org/lab/plankton:1\.9$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("models output does not match %s:\n%s", re, out)
		}
	}
	if strings.Contains(out, "localhost:5055") {
		t.Errorf("the user catalog did not override the embedded faces:\n%s", out)
	}

	var views []struct {
		ID         string   `json:"id"`
		Name       string   `json:"name"`
		GPU        bool     `json:"gpu"`
		Predict    []string `json:"predict"`
		Deprecated string   `json:"deprecated"`
		Cached     bool     `json:"cached"`
	}
	if err := json.Unmarshal([]byte(c.ok("models", "--json")), &views); err != nil {
		t.Fatal(err)
	}
	if len(views) != 3 || views[1].ID != "plankton@1.10" || views[1].Deprecated == "" ||
		strings.Join(views[2].Predict, "|") != "python3|-m|plankton.serve|--batch|16" || !views[2].GPU {
		t.Errorf("models --json = %+v", views)
	}

	card := c.ok("models", "info", "plankton@1.9")
	for _, want := range []string{"name:        plankton", "version:     1.9", "gpu:         yes",
		"predict:     python3 -m plankton.serve --batch 16  (from catalog)", "cached:      no (run 'scv-hpc pull plankton@1.9')"} {
		if !strings.Contains(card, want) {
			t.Errorf("model card lacks %q:\n%s", want, card)
		}
	}
	if card := c.ok("models", "info", "plankton"); !strings.Contains(card, "deprecated:  use plankton 2") {
		t.Errorf("plankton (newest) card:\n%s", card)
	}

	// Unknown names suggest close ones; a bad catalog names the file and the entry.
	if _, errs, code := c.run("models", "info", "plankon"); code != 1 || !strings.Contains(errs, "did you mean plankton?") {
		t.Errorf("models info plankon: exit %d\n%s", code, errs)
	}
	bad := newCLI(t, "models:\n  - name: broken\n")
	if _, errs, code := bad.run("models"); code != 1 || !strings.Contains(errs, bad.catalog) || !strings.Contains(errs, "entry 1 (broken): missing image") {
		t.Errorf("bad catalog: exit %d\n%s", code, errs)
	}

	// A deprecated model warns on use, whatever happens next.
	_, errs, _ := c.run("--offline", "pull", "plankton")
	if !strings.Contains(errs, `"level":"warn"`) || !strings.Contains(errs, "deprecated: use plankton 2") {
		t.Errorf("no deprecation warning:\n%s", errs)
	}
}

// TestModelsShowsCached marks a pulled model as cached, with its digest and the predict
// command read from the image.
func TestModelsShowsCached(t *testing.T) {
	reg := testenv.StartRegistryStoppable(t)
	digest := testenv.Push(t, fakeFaces(t, "amd64", 0), reg.Host+"/scivision/faces:1.0")
	c := newCLI(t, facesCatalog(reg.Host))
	c.ok("pull", "faces")
	if out := c.ok("models"); !regexp.MustCompile(`(?m)^faces\s+1\.0\s+no\s+object-detection\s+yes\s`).MatchString(out) {
		t.Errorf("models:\n%s", out)
	}
	card := c.ok("models", "info", "faces")
	for _, want := range []string{"cached:      " + digest, "predict:     /usr/local/bin/faces --serve  (from label org.scivision.predict)"} {
		if !strings.Contains(card, want) {
			t.Errorf("card lacks %q:\n%s", want, card)
		}
	}
}
