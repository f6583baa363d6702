package docs

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestCommandsParse(t *testing.T) {
	ref, err := Commands()
	if err != nil {
		t.Fatal(err)
	}
	help := ref.Commands
	p, ok := help["scv-hpc predict"]
	if !ok {
		t.Fatalf("no section for scv-hpc predict among %d", len(help))
	}
	if p.Short != "Run a model over a dataset on this machine" || p.Group != "Running a job" ||
		!strings.HasPrefix(p.Long, "Predict runs MODEL over every image under --data") ||
		!strings.HasPrefix(p.Example, "  scv-hpc predict faces --data ./imgs --out ./run1\n") {
		t.Errorf("scv-hpc predict: %+v", p)
	}
	if v := help["scv-hpc version"]; v.Long != "" || v.Example != "" || v.Short == "" || v.Group != "This host" {
		t.Errorf("scv-hpc version: %+v", v)
	}
	if r := help["scv-hpc"]; r.Group != "" || r.Short == "" {
		t.Errorf("scv-hpc: %+v", r)
	}
	if want := []string{"Models and the cache", "Running a job", "Results", "This host"}; !slices.Equal(ref.Groups, want) {
		t.Errorf("groups %q, want %q", ref.Groups, want)
	}
}

func TestParse(t *testing.T) {
	const good = "# title\n\nintro text\n\n## scv-hpc\n\nDo all\n\n## Group A\n\nwhat A holds\n\n### scv-hpc x\n\nDo x\n\n```text\nLong\n\n  more\n```\n\nExamples:\n\n```sh\n  scv-hpc x\n```\n\n## Group B\n\n### scv-hpc y\n\nDo y\n"
	ref, err := parse(good)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Help{"scv-hpc": {Short: "Do all"}, "scv-hpc x": {"Do x", "Long\n\n  more", "  scv-hpc x", "Group A"}, "scv-hpc y": {Short: "Do y", Group: "Group B"}}
	if !maps.Equal(ref.Commands, want) || !slices.Equal(ref.Groups, []string{"Group A", "Group B"}) {
		t.Errorf("parse = %#v, want %#v", ref, want)
	}
	for _, tc := range []struct{ name, md, want string }{
		{"no summary", "## scv-hpc x\n\n```text\nL\n```\n", "no summary line"},
		{"### outside a group", "### scv-hpc x\n\nA\n", "bad or repeated section"},
		{"## inside a group", "## G\n\n## scv-hpc x\n\nA\n", "bad or repeated section"},
		{"repeated group", "## G\n\n### scv-hpc x\n\nA\n\n## G\n", "repeated group"},
		{"repeated section", "## scv-hpc x\n\nA\n\n## scv-hpc x\n\nB\n", "repeated section"},
		{"not a command", "## G\n\n### Usage\n\nA\n", "neither a command path nor a group"},
		{"deeper heading", "## scv-hpc x\n\nA\n\n#### Notes\n", "neither a command path nor a group"},
		{"unclosed block", "## scv-hpc x\n\nA\n\n```text\nL\n", "not closed"},
		{"two descriptions", "## scv-hpc x\n\nA\n\n```text\nL\n```\n\n```text\nM\n```\n", "repeated or empty"},
		{"empty block", "## scv-hpc x\n\nA\n\n```sh\n```\n", "repeated or empty"},
		{"stray prose", "## scv-hpc x\n\nA\n\nmore words\n", `unexpected line in "scv-hpc x": "more words"`},
		{"other fence", "## scv-hpc x\n\nA\n\n```go\nx\n```\n", "unexpected line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parse(tc.md); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("parse: %v, want an error with %q", err, tc.want)
			}
		})
	}
}
