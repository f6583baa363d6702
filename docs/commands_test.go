package docs

import (
	"strings"
	"testing"
)

func TestCommandsParse(t *testing.T) {
	help, err := Commands()
	if err != nil {
		t.Fatal(err)
	}
	p, ok := help["scv-hpc predict"]
	if !ok {
		t.Fatalf("no section for scv-hpc predict among %d", len(help))
	}
	if p.Short != "Run a model over a dataset on this machine" ||
		!strings.HasPrefix(p.Long, "Predict runs MODEL over every image under --data") ||
		!strings.HasPrefix(p.Example, "  scv-hpc predict faces --data ./imgs --out ./run1\n") {
		t.Errorf("scv-hpc predict: %+v", p)
	}
	if v := help["scv-hpc version"]; v.Long != "" || v.Example != "" || v.Short == "" {
		t.Errorf("scv-hpc version: %+v", v)
	}
}

func TestParse(t *testing.T) {
	const good = "# title\n\nintro text\n\n## scv-hpc x\n\nDo x\n\n```text\nLong\n\n  more\n```\n\nExamples:\n\n```sh\n  scv-hpc x\n```\n\n## scv-hpc y\n\nDo y\n"
	help, err := parse(good)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Help{"scv-hpc x": {"Do x", "Long\n\n  more", "  scv-hpc x"}, "scv-hpc y": {Short: "Do y"}}
	if len(help) != len(want) || help["scv-hpc x"] != want["scv-hpc x"] || help["scv-hpc y"] != want["scv-hpc y"] {
		t.Errorf("parse = %#v, want %#v", help, want)
	}
	for _, tc := range []struct{ name, md, want string }{
		{"no summary", "## scv-hpc x\n\n```text\nL\n```\n", "no summary line"},
		{"repeated section", "## scv-hpc x\n\nA\n\n## scv-hpc x\n\nB\n", "repeated section"},
		{"not a command", "## Usage\n\nA\n", "bad or repeated section"},
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
