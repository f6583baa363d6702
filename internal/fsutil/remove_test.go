package fsutil

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRemoveAllReadOnlyTree(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root removes read-only directories anyway; the case needs an unprivileged user")
	}
	root := filepath.Join(t.TempDir(), "tree")
	deep := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(deep, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{deep, filepath.Join(root, "a"), root} {
		if err := os.Chmod(d, 0o555); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(root); err == nil {
		t.Fatal("os.RemoveAll emptied a read-only tree: the case tests nothing here")
	}
	if err := RemoveAll(root); err != nil {
		t.Fatalf("RemoveAll: %v", err)
	}
	if _, err := os.Lstat(root); !os.IsNotExist(err) {
		t.Fatalf("%s still there: %v", root, err)
	}
}

func TestRemoveAllMissing(t *testing.T) {
	if err := RemoveAll(filepath.Join(t.TempDir(), "absent")); err != nil {
		t.Fatalf("RemoveAll of a missing path: %v", err)
	}
}
