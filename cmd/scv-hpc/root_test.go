package main

import (
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/docs"
)

// TestUsageExitCodes: every wrong invocation exits 2 with a message naming the
// problem, and a command group alone prints its help.
func TestUsageExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string // in stderr, or in stdout for code 0
	}{
		{[]string{"nosuch"}, 2, `unknown command "nosuch" for "scv-hpc"`},
		{[]string{"cache", "nosuch"}, 2, `unknown command "nosuch" for "scv-hpc cache"`},
		{[]string{"image", "nosuch"}, 2, `unknown command "nosuch" for "scv-hpc image"`},
		{[]string{"pull"}, 2, "requires at least 1 arg"},
		{[]string{"status", "a", "b"}, 2, "accepts 1 arg(s), received 2"},
		{[]string{"collect"}, 2, "accepts 1 arg(s), received 0"},
		{[]string{"models", "info"}, 2, "accepts 1 arg(s), received 0"},
		{[]string{"cache", "ls", "extra"}, 2, "unknown command"},
		{[]string{"predict", "faces", "--no-such-flag"}, 2, "unknown flag: --no-such-flag"},
		{[]string{"--log-level", "loud", "version"}, 2, "loud"},
		{[]string{"cache"}, 0, "scv-hpc cache [command]"},
	} {
		t.Run(strings.Join(tc.args, "_"), func(t *testing.T) {
			code, stdout, stderr := runInProcess(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout, stderr)
			}
			got := stderr
			if tc.code == 0 {
				got = stdout
			} else if !strings.Contains(stderr, "Run 'scv-hpc --help' for usage.") {
				t.Errorf("stderr lacks the usage hint: %s", stderr)
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, got)
			}
		})
	}
}

// TestEveryCommandDescribed: docs/commands.md has one section for every command and
// none for a command that does not exist, and --help prints its section.
func TestEveryCommandDescribed(t *testing.T) {
	ref, err := docs.Commands()
	if err != nil {
		t.Fatal(err)
	}
	help := ref.Commands
	root := newRootCmd(newApp(nil, io.Discard, io.Discard))
	seen := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		p := c.CommandPath()
		seen[p] = true
		if _, ok := help[p]; !ok {
			t.Errorf("docs/commands.md has no section %q", "### "+p)
		}
		if c.Parent() == root && c.GroupID == "" {
			t.Errorf("%s is in no group of docs/commands.md", p)
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	for p := range help {
		if !seen[p] {
			t.Errorf("docs/commands.md describes %q, which is not a command", p)
		}
	}

	code, stdout, _ := runInProcess(t, "cache", "gc", "--help")
	h := help["scv-hpc cache gc"]
	for _, want := range []string{h.Long, h.Example, "--dry-run"} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("cache gc --help: exit %d, output lacks %q:\n%s", code, want, stdout)
		}
	}
}
