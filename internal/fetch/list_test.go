package fetch

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestReadModelList(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
		wantErr  string
	}{
		{"empty", "", nil, ""},
		{"plain", "faces\nplankton@1.2\n", []string{"faces", "plankton@1.2"}, ""},
		{"comments", "# site models\n\nfaces   # demo\n  reg.example/a/b:1#not-a-comment\n", []string{"faces", "reg.example/a/b:1#not-a-comment"}, ""},
		{"crlf", "faces\r\noci-layout:/srv/x:v1\r\n", []string{"faces", "oci-layout:/srv/x:v1"}, ""},
		{"no final newline", "faces", []string{"faces"}, ""},
		{"two per line", "faces\nfaces plankton\n", nil, "models.txt:2"},
		{"long line", strings.Repeat("a", maxListLine+10), nil, "limited"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadModelList(strings.NewReader(tt.in), "models.txt")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzReadModelList(f *testing.F) {
	f.Add("faces\n# x\nreg.example/a:1 # y\n")
	f.Add("a b\n")
	f.Fuzz(func(t *testing.T, in string) {
		models, err := ReadModelList(strings.NewReader(in), "fuzz")
		if err != nil {
			return
		}
		for _, m := range models {
			if m == "" || strings.ContainsAny(m, " \t\n\r") || strings.HasPrefix(m, "#") {
				t.Fatalf("bad model %q from %q", m, in)
			}
		}
	})
}

func TestModels(t *testing.T) {
	file := filepath.Join(t.TempDir(), "models.txt")
	if err := os.WriteFile(file, []byte("b # comment\nc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		file  string
		stdin string
		want  []string
		err   error
	}{
		{"arguments", []string{"a"}, "", "", []string{"a"}, nil},
		{"arguments, then the file", []string{"a"}, file, "", []string{"a", "b", "c"}, nil},
		{"stdin", nil, "-", "d\n", []string{"d"}, nil},
		{"none", nil, "", "", nil, ErrNoModels},
		{"an empty list", nil, "-", "# nothing\n", nil, ErrNoModels},
		{"a missing file", nil, file + ".none", "", nil, os.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Models(tc.args, tc.file, strings.NewReader(tc.stdin))
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) || !slices.Equal(got, tc.want) {
				t.Errorf("Models = %v, %v; want %v, %v", got, err, tc.want, tc.err)
			}
		})
	}
}
