package tool

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		out     string
		wantErr []string
	}{
		{"ok", []string{"-c", "echo hello"}, "hello\n", nil},
		{"stderr tail", []string{"-c", "echo out; echo broken >&2; exit 3"}, "", []string{"sh -c", "exit status 3", "broken"}},
		{"stdout when stderr is empty", []string{"-c", "echo only-out; exit 1"}, "", []string{"exit status 1", "only-out"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Run(context.Background(), "/bin/sh", tt.args...)
			if tt.wantErr == nil {
				if err != nil || string(out) != tt.out {
					t.Fatalf("Run = %q, %v; want %q", out, err, tt.out)
				}
				return
			}
			if err == nil {
				t.Fatalf("Run succeeded with %q, want an error", out)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Run(ctx, "/bin/sh", "-c", "exec sleep 30")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run = %v, want the deadline", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("Run took %v after its context ended", time.Since(start))
	}
}

func TestTail(t *testing.T) {
	if got := Tail("  short \n", 10); got != "short" {
		t.Errorf("Tail = %q", got)
	}
	if got := Tail("abcdefghij", 4); got != "…ghij" {
		t.Errorf("Tail = %q", got)
	}
}
