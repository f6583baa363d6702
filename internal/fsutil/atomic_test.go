package fsutil

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFileAtomicReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ref")
	for _, content := range []string{"first\n", "second, longer\n"} {
		if err := WriteFileAtomic(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != content {
			t.Fatalf("got %q, %v; want %q", got, err, content)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temp files left behind: %v", ents)
	}
}

func TestWriteAtomicFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "job.json")
	if err := WriteFileAtomic(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk full")
	err := WriteAtomic(p, 0o644, func(w io.Writer) error {
		w.Write([]byte("half"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the fill error", err)
	}
	got, _ := os.ReadFile(p)
	if string(got) != "old" {
		t.Fatalf("old content lost: %q", got)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temp files left behind: %v", ents)
	}
}

func TestWriteOutput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.txt")
	fill := func(w io.Writer) error { _, err := io.WriteString(w, "hello\n"); return err }
	for _, tc := range []struct{ name, want string }{{"-", "stdout"}, {path, path}} {
		var stdout strings.Builder
		where, err := WriteOutput(tc.name, &stdout, fill)
		if err != nil || where != tc.want {
			t.Fatalf("WriteOutput(%s) = %s, %v; want %s", tc.name, where, err, tc.want)
		}
		got := stdout.String()
		if tc.name != "-" {
			b, _ := os.ReadFile(path)
			got = string(b)
			if stdout.Len() != 0 {
				t.Errorf("wrote %q to stdout too", stdout.String())
			}
		}
		if got != "hello\n" {
			t.Errorf("WriteOutput(%s) wrote %q", tc.name, got)
		}
	}
	if _, err := WriteOutput(filepath.Join(t.TempDir(), "none", "x"), nil, fill); err == nil {
		t.Error("WriteOutput into a missing directory: no error")
	}
}
