package imagebuild

import (
	"archive/tar"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
)

// TestLayersOrder: --from-dir at the bottom, each directory --add next in order, one
// layer of file --adds on top.
func TestLayersOrder(t *testing.T) {
	dir := t.TempDir()
	mk := func(p string) string {
		p = filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(p), 0o644)
		return p
	}
	mk("root/etc/os-release")
	mk("model/weights.bin")
	mk("conf/a.yaml")
	f1, f2 := mk("f1"), mk("f2")
	adds := []Add{{f1, "/usr/bin/f1"}, {filepath.Join(dir, "model"), "/opt/model"}, {f2, "/usr/bin/f2"}, {filepath.Join(dir, "conf"), "/etc/conf"}}
	layers, err := Layers(filepath.Join(dir, "root"), adds, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]string
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		var files []string
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if h.Typeflag == tar.TypeReg {
				files = append(files, h.Name)
			}
		}
		rc.Close()
		sort.Strings(files)
		got = append(got, files)
	}
	want := [][]string{{"etc/os-release"}, {"opt/model/weights.bin"}, {"etc/conf/a.yaml"}, {"usr/bin/f1", "usr/bin/f2"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("layers hold %q, want %q", got, want)
	}
	if _, err := Layers("", []Add{{filepath.Join(dir, "missing"), "/x"}}, nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing source: %v", err)
	}
	for _, tc := range []struct {
		in  string
		add Add
		ok  bool
	}{{"bin/faces:/usr/bin/faces", Add{"bin/faces", "/usr/bin/faces"}, true}, {"c:\\x:y:/d", Add{"c:\\x:y", "/d"}, true}, {"a:b", Add{}, false}, {":/x", Add{}, false}} {
		a, err := ParseAdd(tc.in)
		if (err == nil) != tc.ok || a != tc.add || (err != nil && !errors.Is(err, ErrBadAdd)) {
			t.Errorf("ParseAdd(%q) = %+v, %v", tc.in, a, err)
		}
	}
}

func TestParseSettings(t *testing.T) {
	if got, err := ParseArgs([]string{`["python3", "/opt/serve.py"]`}); err != nil || !reflect.DeepEqual(got, []string{"python3", "/opt/serve.py"}) {
		t.Errorf("JSON form: %q %v", got, err)
	}
	if got, err := ParseArgs([]string{"a b", "c"}); err != nil || len(got) != 2 {
		t.Errorf("repeated form: %q %v", got, err)
	}
	if _, err := ParseArgs([]string{`["x",`}); !errors.Is(err, ErrBadSetting) {
		t.Errorf("broken JSON: %v", err)
	}
	for _, bad := range []string{"NOEQUALS", "=v"} {
		if _, err := ParseEnv([]string{bad}); !errors.Is(err, ErrBadSetting) {
			t.Errorf("env %q: %v", bad, err)
		}
	}
	if m, err := ParseLabels([]string{"a=b=c", "d="}); err != nil || m["a"] != "b=c" || m["d"] != "" {
		t.Errorf("labels: %v %v", m, err)
	}
	if _, err := ParseLabels([]string{"=x"}); !errors.Is(err, ErrBadSetting) {
		t.Errorf("label without key: %v", err)
	}
}
