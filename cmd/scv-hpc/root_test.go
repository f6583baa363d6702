package main

import (
	"strings"
	"testing"
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
