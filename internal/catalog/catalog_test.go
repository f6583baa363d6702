package catalog

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func noSite(t *testing.T) {
	t.Helper()
	old := SiteFile
	SiteFile = filepath.Join(t.TempDir(), "absent.yaml")
	t.Cleanup(func() { SiteFile = old })
}

func TestDefaultCatalog(t *testing.T) {
	noSite(t)
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.Lookup("faces")
	if err != nil {
		t.Fatal(err)
	}
	if e.Image == "" || e.Source != defaultSource || e.GPU || len(e.Tasks) == 0 {
		t.Errorf("faces entry = %+v", e)
	}
	if !strings.Contains(strings.ToLower(e.Description), "pigo") {
		t.Errorf("faces description does not say what it is: %q", e.Description)
	}
	for _, e := range c.Entries() {
		if err := e.Validate(); err != nil {
			t.Errorf("embedded entry %s: %v", e.ID(), err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string // substrings of the error
	}{
		{"missing image", "models:\n  - name: a\n", []string{"bad.yaml", "entry 1 (a)", "missing image"}},
		{"missing name", "models:\n  - image: r.example/a:1\n", []string{"entry 1 (no name)", "missing name"}},
		{"bad ref", "models:\n  - name: a\n    image: 'UPPER/Case:tag:x'\n", []string{"entry 1 (a)", "not a valid reference"}},
		{"duplicate", "models:\n  - name: a\n    image: r.example/a:1\n  - name: a\n    image: r.example/a:2\n", []string{"entry 2", "duplicate model a"}},
		{"duplicate version", "models:\n  - {name: a, version: '1', image: r.example/a:1}\n  - {name: a, version: '1', image: r.example/a:2}\n", []string{"duplicate model a@1"}},
		{"bad name", "models:\n  - name: org/a\n    image: r.example/a:1\n", []string{"name \"org/a\""}},
		{"bad version", "models:\n  - {name: a, version: '1@2', image: r.example/a:1}\n", []string{"version \"1@2\""}},
		{"unknown field", "models:\n  - name: a\n    imgae: r.example/a:1\n", []string{"bad.yaml", "imgae"}},
		{"predict map", "models:\n  - name: a\n    image: r.example/a:1\n    predict: {x: 1}\n", []string{"predict"}},
		{"predict quote", "models:\n  - name: a\n    image: r.example/a:1\n    predict: \"run 'x\"\n", []string{"unterminated quote"}},
		{"predict empty command", "models:\n  - name: a\n    image: r.example/a:1\n    predict: ['', --serve]\n", []string{"entry 1 (a)", "predict: empty command"}},
		{"empty layout", "models:\n  - name: a\n    image: 'oci-layout:'\n", []string{"needs a path"}},
		{"not yaml", "models: [\n", []string{"bad.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "bad.yaml")
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParsePredict(t *testing.T) {
	tests := []struct {
		value string
		want  Command
	}{
		{`predict: /usr/local/bin/faces --serve`, Command{"/usr/local/bin/faces", "--serve"}},
		{`predict: [python3, -m, "my model"]`, Command{"python3", "-m", "my model"}},
		{`predict: "python3 -c 'print(1)'"`, Command{"python3", "-c", "print(1)"}},
		{``, nil},
	}
	for _, tt := range tests {
		es, err := Parse([]byte("models:\n  - name: a\n    image: r.example/a:1\n    "+tt.value+"\n"), "x")
		if err != nil {
			t.Fatalf("%s: %v", tt.value, err)
		}
		if !reflect.DeepEqual(es[0].Predict, tt.want) {
			t.Errorf("%s: predict = %q, want %q", tt.value, es[0].Predict, tt.want)
		}
	}
}

func TestLoadOverrideAndVersions(t *testing.T) {
	dir := t.TempDir()
	old := SiteFile
	SiteFile = writeFile(t, dir, "site.yaml", `models:
  - name: faces
    image: mirror.site.example/scivision/faces:1.0
    description: site mirror
  - name: plankton
    image: mirror.site.example/plankton:2
`)
	t.Cleanup(func() { SiteFile = old })
	user := writeFile(t, dir, "user.yaml", `models:
  - {name: plankton, version: "1.9", image: "r.example/plankton:1.9"}
  - {name: plankton, version: "1.10", image: "r.example/plankton:1.10", deprecated: "use 2.0"}
  - {name: sat, image: "oci-layout:/srv/images/sat:v3", gpu: true, tasks: [segmentation]}
`)
	c, err := Load(user)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		lookup, image, source string
		wantErr               bool
	}{
		{"faces", "mirror.site.example/scivision/faces:1.0", SiteFile, false},
		{"plankton", "r.example/plankton:1.10", user, false}, // newest, user overrides site
		{"plankton@1.9", "r.example/plankton:1.9", user, false},
		{"plankton@2", "", "", true}, // the site's entry was replaced by name
		{"sat", "oci-layout:/srv/images/sat:v3", user, false},
		{"nope", "", "", true},
	}
	for _, tt := range tests {
		e, err := c.Lookup(tt.lookup)
		if tt.wantErr {
			if !errors.Is(err, ErrUnknown) {
				t.Errorf("Lookup(%q) err = %v, want ErrUnknown", tt.lookup, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Lookup(%q): %v", tt.lookup, err)
			continue
		}
		if e.Image != tt.image || e.Source != tt.source {
			t.Errorf("Lookup(%q) = %s from %s, want %s from %s", tt.lookup, e.Image, e.Source, tt.image, tt.source)
		}
	}
	var ids []string
	for _, e := range c.Entries() {
		ids = append(ids, e.ID())
	}
	if want := []string{"faces", "plankton@1.10", "plankton@1.9", "sat"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("Entries = %v, want %v", ids, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	noSite(t)
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("err = %v", err)
	}
}

func TestLookupSuggests(t *testing.T) {
	noSite(t)
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Lookup("facse")
	if err == nil || !strings.Contains(err.Error(), "did you mean faces?") || !errors.Is(err, ErrUnknown) {
		t.Fatalf("err = %v", err)
	}
	if _, err := c.Lookup("faces@9.9"); err == nil || !strings.Contains(err.Error(), "it has faces@1.0") {
		t.Fatalf("err = %v", err)
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.10", "1.9", 1}, {"1.0", "1.0", 0}, {"2", "10", -1}, {"1.0", "1.0.1", -1},
		{"1.0-rc1", "1.0-rc2", -1}, {"", "1", -1},
	}
	for _, tt := range tests {
		if got := compareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(defaultYAML))
	f.Add([]byte("models:\n  - {name: a, version: '1', image: r.example/a:1, predict: \"x 'y z'\"}\n"))
	f.Add([]byte("models: [{name: a, image: 'oci-layout:/x'}]"))
	f.Add([]byte("models:\n  - name: \"\\x00\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := Parse(data, "fuzz")
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for i := range es {
			if err := es[i].Validate(); err != nil {
				t.Fatalf("Parse accepted an invalid entry %+v: %v", es[i], err)
			}
			if seen[es[i].ID()] {
				t.Fatalf("Parse accepted a duplicate %s", es[i].ID())
			}
			seen[es[i].ID()] = true
		}
	})
}

func TestImageOf(t *testing.T) {
	noSite(t)
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.Lookup("faces")
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"faces": e.Image, e.ID(): e.Image, "no-such-model": "", "faces@0.0.0-none": ""} {
		got, ok := c.ImageOf(id)
		if got != want || ok != (want != "") {
			t.Errorf("ImageOf(%q) = %q, %v; want %q", id, got, ok, want)
		}
	}
}
