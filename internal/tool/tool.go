// Package tool runs the external programs scv-hpc relies on (squashfs tools, packers)
// so that a failure says which program failed, how it was called and the end of what
// it printed.
package tool

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Run runs bin with args and returns its standard output. Cancelling ctx kills it
// (its pipes are given up 5 s later). A failure carries the program's name, its
// arguments and the last 1000 bytes of its stderr (or stdout, when stderr is empty).
func Run(ctx context.Context, bin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(bin), ctxErr)
	}
	msg := Tail(stderr.String(), 1000)
	if msg == "" {
		msg = Tail(stdout.String(), 1000)
	}
	return nil, fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), strings.Join(args, " "), err, msg)
}

// Tail is the last n bytes of s, trimmed, with "…" in front when it was cut.
func Tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}
