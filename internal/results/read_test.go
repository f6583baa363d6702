package results

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

func writeFile(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "000000.jsonl")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRead(t *testing.T) {
	long := `{"path":"big","ok":true,"result":"` + strings.Repeat("r", 300_000) + `","ms":1}`
	tests := []struct {
		name    string
		content string
		want    []string // paths read
		badLine int      // >0: want ErrCorrupt naming this line
	}{
		{"empty", "", nil, 0},
		{"lines", "{\"path\":\"a\",\"ok\":true,\"ms\":1}\n{\"path\":\"b\",\"ok\":false,\"error\":\"x\",\"stage\":\"predict\",\"ms\":2}\n", []string{"a", "b"}, 0},
		{"torn last line ignored", "{\"path\":\"a\",\"ok\":true,\"ms\":1}\n{\"path\":\"b\",\"o", []string{"a"}, 0},
		{"complete last line without newline is torn", "{\"path\":\"a\",\"ok\":true,\"ms\":1}", nil, 0},
		{"blank lines skipped", "\n{\"path\":\"a\",\"ok\":true}\n  \n", []string{"a"}, 0},
		{"line longer than the buffer", long + "\n{\"path\":\"c\",\"ok\":true}\n", []string{"big", "c"}, 0},
		{"corrupt complete line", "{\"path\":\"a\",\"ok\":true}\n{garbage}\n{\"path\":\"c\",\"ok\":true}\n", nil, 2},
		{"record without path", "{\"path\":\"a\",\"ok\":true}\n{\"path\":\"b\",\"ok\":true}\n{\"ok\":true}\n", nil, 3},
		{"wrong type", "{\"path\":\"a\",\"ok\":\"yes\"}\n", nil, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.content)
			var got []string
			err := Read(path, func(r Record) error { got = append(got, r.Path); return nil })
			if tc.badLine > 0 {
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path+":"+strconv.Itoa(tc.badLine)+":") {
					t.Fatalf("err = %v, want ErrCorrupt at %s:%d", err, path, tc.badLine)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("read %q, want %q", got, tc.want)
			}
		})
	}
	if err := Read(filepath.Join(t.TempDir(), "none.jsonl"), func(Record) error { return nil }); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestFinalOutcomesFailed(t *testing.T) {
	lines := []string{
		`{"path":"ok-then-fail","ok":true,"result":1}`,
		`{"path":"ok-then-fail","ok":false,"error":"late","stage":"crash"}`,
		`{"path":"fail-then-ok","ok":false,"error":"first","stage":"timeout"}`,
		`{"path":"fail-then-ok","ok":true,"result":2}`,
		`{"path":"fail-twice","ok":false,"error":"one","stage":"predict"}`,
		`{"path":"fail-twice","ok":false,"error":"two","stage":"load"}`,
		`{"path":"ok-twice","ok":true,"result":3}`,
		`{"path":"ok-twice","ok":true,"result":4}`,
		`{"path":"once","ok":false,"error":"bad png","stage":"input"}`,
	}
	path := writeFile(t, strings.Join(lines, "\n")+"\n")
	fin, err := Final(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"ok-then-fail": "1", "fail-then-ok": "2", "fail-twice": "two", "ok-twice": "4", "once": "bad png"}
	for p, w := range want {
		r := fin[p]
		if got := string(r.Result) + r.Error; got != w {
			t.Errorf("final of %s: %q, want %q", p, got, w)
		}
	}
	out, _ := Outcomes(path)
	failed, _ := Failed(path)
	if keys(out) != "fail-then-ok fail-twice ok-then-fail ok-twice once" {
		t.Errorf("Outcomes = %s", keys(out))
	}
	for p, ok := range out {
		if ok != fin[p].OK {
			t.Errorf("Outcomes[%s] = %v, Final has ok %v", p, ok, fin[p].OK)
		}
	}
	if keys(failed) != "fail-twice once" {
		t.Errorf("Failed = %s", keys(failed))
	}
	missing := filepath.Join(t.TempDir(), "none.jsonl")
	if d, err := Outcomes(missing); err != nil || len(d) != 0 {
		t.Errorf("Outcomes of a missing file: %v, %v", d, err)
	}
	if f, err := Failed(missing); err != nil || len(f) != 0 {
		t.Errorf("Failed of a missing file: %v, %v", f, err)
	}
}

func keys(m map[string]bool) string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}

// FuzzRead feeds untrusted file contents to the reader: it must not panic, must
// ignore a torn tail, and every record it returns must survive a write and read back.
func FuzzRead(f *testing.F) {
	f.Add([]byte("{\"path\":\"a\",\"ok\":true,\"result\":{\"x\":1},\"ms\":3}\n"))
	f.Add([]byte("{\"path\":\"b\",\"ok\":false,\"error\":\"e\",\"stage\":\"crash\",\"attempts\":2}\n{\"pa"))
	f.Add([]byte("\n\n{}\n"))
	f.Add([]byte("{\"path\":\"\\u00e9\\n\",\"ok\":true,\"result\":[1,2,null]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var recs []Record
		err := read(bytes.NewReader(data), "fuzz.jsonl", func(r Record) error { recs = append(recs, r); return nil })
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error is not ErrCorrupt: %v", err)
			}
			return
		}
		if i := bytes.LastIndexByte(data, '\n'); i < len(data)-1 {
			// The torn tail changes nothing.
			var again []Record
			read(bytes.NewReader(data[:i+1]), "fuzz.jsonl", func(r Record) error { again = append(again, r); return nil })
			if len(again) != len(recs) {
				t.Fatalf("torn tail changed the records: %d vs %d", len(again), len(recs))
			}
		}
		path := filepath.Join(t.TempDir(), "r.jsonl")
		w, err := OpenWriter(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Path == "" {
				t.Fatal("record without path returned")
			}
			if err := w.Write(r); err != nil {
				t.Fatalf("record read but not writable: %v", err)
			}
		}
		w.Close()
		n := 0
		if err := Read(path, func(Record) error { n++; return nil }); err != nil || n != len(recs) {
			t.Fatalf("rewritten file: %d records, %v; want %d", n, err, len(recs))
		}
	})
}
