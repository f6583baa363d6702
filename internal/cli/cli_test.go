package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/docs"
)

var errBadOption = errors.New("bad option")

// TestExit: each kind of error gets its exit code, and the message it should.
func TestExit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		code   int
		stderr string
	}{
		{"nil", nil, ExitOK, ""},
		{"inputs failed", fmt.Errorf("predict: %w", ErrInputsFailed), ExitInputsFailed, ""},
		{"usage error", Usagef("--jobs %d: want at least 1", 0), ExitUsage, "scv-hpc: --jobs 0: want at least 1\nRun 'scv-hpc --help' for usage.\n"},
		{"wrapped usage error", fmt.Errorf("stage: %w", UsageError{Err: errors.New("x")}), ExitUsage, "scv-hpc: stage: x\nRun 'scv-hpc --help' for usage.\n"},
		{"usage sentinel", fmt.Errorf("--retries -1: %w", errBadOption), ExitUsage, "scv-hpc: --retries -1: bad option\nRun 'scv-hpc --help' for usage.\n"},
		{"other error", errors.New("disk full"), ExitError, "scv-hpc: disk full\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := Exit(&stderr, tc.err, []error{errBadOption}); code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			if stderr.String() != tc.stderr {
				t.Errorf("stderr %q, want %q", stderr.String(), tc.stderr)
			}
		})
	}
}

// tree is a small command tree: a group holding a command of one argument.
func tree(ran *[]string) *cobra.Command {
	root := &cobra.Command{Use: "scv-hpc", SilenceErrors: true, SilenceUsage: true}
	group := &cobra.Command{Use: "cache", Args: cobra.NoArgs}
	group.AddCommand(&cobra.Command{Use: "path MODEL", Args: cobra.ExactArgs(1), RunE: func(_ *cobra.Command, args []string) error {
		*ran = append(*ran, args...)
		return nil
	}})
	root.AddCommand(group)
	return root
}

// TestUsageArgs: a wrong number of arguments and an unknown command below a group are
// usage errors; a group alone prints its help; a right call runs.
func TestUsageArgs(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		usage  bool   // the error is a UsageError
		want   string // in the error, or in stdout when there is none
		ranArg string
	}{
		{[]string{"cache", "path"}, true, "accepts 1 arg(s), received 0", ""},
		{[]string{"cache", "path", "a", "b"}, true, "accepts 1 arg(s), received 2", ""},
		{[]string{"cache", "nosuch"}, true, `unknown command "nosuch" for "scv-hpc cache"`, ""},
		{[]string{"cache"}, false, "scv-hpc cache [command]", ""},
		{[]string{"cache", "path", "faces"}, false, "", "faces"},
	} {
		t.Run(strings.Join(tc.args, "_"), func(t *testing.T) {
			var ran []string
			root := tree(&ran)
			UsageArgs(root)
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetArgs(tc.args)
			err := root.Execute()
			var ue UsageError
			if got := errors.As(err, &ue); got != tc.usage {
				t.Fatalf("error %v: usage error %v, want %v", err, got, tc.usage)
			}
			got := out.String()
			if err != nil {
				got = err.Error()
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("got %q, want it to hold %q", got, tc.want)
			}
			if strings.Join(ran, " ") != tc.ranArg {
				t.Errorf("ran with %q, want %q", ran, tc.ranArg)
			}
		})
	}
}

// TestDescribe: every command gets its section's text, and the top-level ones their
// group, by command path.
func TestDescribe(t *testing.T) {
	var ran []string
	root := tree(&ran)
	ref := &docs.Reference{
		Groups: []string{"Models and the cache"},
		Commands: map[string]docs.Help{
			"scv-hpc":            {Short: "run models"},
			"scv-hpc cache":      {Short: "manage the cache", Long: "The cache holds SIFs.", Group: "Models and the cache"},
			"scv-hpc cache path": {Short: "print a SIF's path", Example: "  scv-hpc cache path faces", Group: "Models and the cache"},
		},
	}
	Describe(root, ref)
	cache, _, err := root.Find([]string{"cache"})
	if err != nil {
		t.Fatal(err)
	}
	path, _, err := root.Find([]string{"cache", "path"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ got, want string }{
		{root.Short, "run models"},
		{cache.Short, "manage the cache"},
		{cache.Long, "The cache holds SIFs."},
		{cache.GroupID, "Models and the cache"},
		{path.Short, "print a SIF's path"},
		{path.Example, "  scv-hpc cache path faces"},
		{path.GroupID, ""}, // groups are for the top level only
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	if !root.ContainsGroup("Models and the cache") {
		t.Error("root lacks the group")
	}
}

// TestRender: JSON when asked, indented, with [] for a nil list; text otherwise.
func TestRender(t *testing.T) {
	text := func(w io.Writer) error { _, err := io.WriteString(w, "a table\n"); return err }
	var none []string
	for _, tc := range []struct {
		name   string
		asJSON bool
		v      any
		want   string
	}{
		{"text", false, []string{"x"}, "a table\n"},
		{"json list", true, []string{"x"}, "[\n  \"x\"\n]\n"},
		{"json nil list", true, none, "[]\n"},
		{"json object", true, map[string]int{"ok": 2}, "{\n  \"ok\": 2\n}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := Render(&out, tc.asJSON, tc.v, text); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("got %q, want %q", out.String(), tc.want)
			}
		})
	}
}
