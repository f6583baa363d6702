package job

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run1")
	in := &Job{Model: "faces", Digest: "sha256:ab", SIF: "/c/x.sif", Predict: []string{"/faces"},
		DataRoot: "/data", Shards: 2, Inputs: 10, Created: time.Unix(100, 0).UTC(),
		Run: RunOptions{Runtime: "builtin", ItemTimeout: Duration(90 * time.Second), Retries: 2}}
	if err := Save(dir, in); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{ShardsDir(dir), ResultsDir(dir), LogsDir(dir), OutputsDir(dir)} {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			t.Errorf("missing %s", d)
		}
	}
	out, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	in.Format = FormatVersion
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n in %+v\nout %+v", in, out)
	}
	if got := ShardFile(dir, 123); filepath.Base(got) != "000123.txt" {
		t.Errorf("ShardFile = %s", got)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); !errors.Is(err, ErrNoJob) {
		t.Errorf("empty dir: %v", err)
	}
	os.WriteFile(File(dir), []byte("{not json"), 0o644)
	if _, err := Load(dir); err == nil {
		t.Error("corrupt job.json accepted")
	}
	os.WriteFile(File(dir), []byte(`{"format":99}`), 0o644)
	if _, err := Load(dir); err == nil {
		t.Error("future format accepted")
	}
}

func TestAllShards(t *testing.T) {
	for n, want := range map[int][]int{0: {}, 1: {0}, 4: {0, 1, 2, 3}} {
		if got := (&Job{Shards: n}).AllShards(); !slices.Equal(got, want) {
			t.Errorf("AllShards of %d shards = %v, want %v", n, got, want)
		}
	}
}
