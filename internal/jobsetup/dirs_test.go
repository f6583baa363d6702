package jobsetup

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/container"
)

// TestDirs: the data directory must exist, both paths come back absolute, and a path a
// container bind cannot express is refused before any work.
func TestDirs(t *testing.T) {
	base := t.TempDir()
	data := filepath.Join(base, "data")
	colon := filepath.Join(base, "a:b")
	file := filepath.Join(base, "file")
	for _, d := range []string{data, colon} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(base)
	for _, tc := range []struct {
		name, data, out   string
		wantData, wantOut string
		err               error
	}{
		{"relative", "data", "run1", data, filepath.Join(base, "run1"), nil},
		{"absolute", data, filepath.Join(base, "x", "run"), data, filepath.Join(base, "x", "run"), nil},
		{"missing data", "nope", "run1", "", "", ErrNoDataDir},
		{"data is a file", "file", "run1", "", "", ErrNoDataDir},
		{"data with colon", "a:b", "run1", "", "", container.ErrBadBindPath},
		{"out with comma", "data", "run,1", "", "", container.ErrBadBindPath},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, o, err := Dirs(tc.data, tc.out)
			if !errors.Is(err, tc.err) || d != tc.wantData || o != tc.wantOut {
				t.Errorf("Dirs(%q, %q) = %q, %q, %v; want %q, %q, %v", tc.data, tc.out, d, o, err, tc.wantData, tc.wantOut, tc.err)
			}
		})
	}
}
