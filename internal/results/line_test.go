package results

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/job"
)

func TestParseLine(t *testing.T) {
	tests := []struct {
		line    string
		want    lineInfo
		wantErr bool
	}{
		{`{"path":"a.png","ok":true,"result":{"faces":[{"x":1,"y":2,"size":3}],"path":"no"},"ms":3,"t":17}`, lineInfo{path: "a.png", ok: true, t: 17}, false},
		{`{"path":"b","ok":false,"error":"x \"y\" }","stage":"crash","ms":0}`, lineInfo{path: "b", stage: "crash"}, false},
		{` { "ok" : true , "path" : "sp ace" } `, lineInfo{path: "sp ace", ok: true}, false},
		{`{"path":"\u00e9\n\"q\"","ok":true}`, lineInfo{path: "é\n\"q\"", ok: true}, false},
		{`{"result":[1,"]",{"a":"}"}],"path":"after-array","ok":true}`, lineInfo{path: "after-array", ok: true}, false},
		{`{"path":"p","ok":true,"result":null,"x":-1.5e3}`, lineInfo{path: "p", ok: true}, false},
		{`{"p\u0061th":"escaped-key","path":"real","ok":true}`, lineInfo{path: "real", ok: true}, false},
		{`{"ok":true}`, lineInfo{}, true},
		{`{}`, lineInfo{}, true},
		{`[1]`, lineInfo{}, true},
		{`{"path":"a","ok":"yes"}`, lineInfo{}, true},
		{`{"path":"a","ok":true,"result":{"x":1}`, lineInfo{}, true},
		{`{"path":"a","ok":true} trailing`, lineInfo{}, true},
		{`{"path":"a","ok":true,"t":"soon"}`, lineInfo{}, true},
		{`{"path":"a` + "\x01" + `","ok":true}`, lineInfo{}, true},
		{`{"path":"a","ok":true,"result":"unterminated}`, lineInfo{}, true},
		{`{garbage}`, lineInfo{}, true},
		{`{"path":7,"ok":true}`, lineInfo{}, true},
	}
	for _, tc := range tests {
		var got lineInfo
		err := parseLineFull([]byte(tc.line), &got)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err %v, want error %v", tc.line, err, tc.wantErr)
			continue
		}
		if err == nil && got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.line, got, tc.want)
		}
	}
}

// TestParseOKLine: the fast path takes the writer's ok lines and nothing else.
func TestParseOKLine(t *testing.T) {
	tests := []struct {
		line string
		want lineInfo
		fast bool
	}{
		{`{"path":"a/b.png","ok":true,"result":{"faces":[]},"ms":3,"attempts":1,"t":1795918957919}`, lineInfo{path: "a/b.png", ok: true, t: 1795918957919}, true},
		{`{"path":"a","ok":true,"ms":3}`, lineInfo{path: "a", ok: true}, true},
		{`{"path":"a","ok":true,"result":{"t":5}}`, lineInfo{path: "a", ok: true}, true},
		{`{"path":"a\"b","ok":true,"ms":3}`, lineInfo{}, false},
		{`{"path":"a","ok":false,"error":"x","stage":"crash","ms":3}`, lineInfo{}, false},
		{`{"ok":true,"path":"a"}`, lineInfo{}, false},
		{`{"path":"","ok":true,"ms":3}`, lineInfo{}, false},
		{`{"path":"a","ok":true,"t":99999999999999999999}`, lineInfo{path: "a", ok: true}, true},
	}
	for _, tc := range tests {
		var got lineInfo
		fast := parseOKLine([]byte(tc.line), &got)
		if fast {
			got.t = timeAtEnd([]byte(tc.line))
		}
		if fast != tc.fast || got != tc.want {
			t.Errorf("%s: %+v %v, want %+v %v", tc.line, got, fast, tc.want, tc.fast)
		}
	}
}

// TestTimeAtEnd: the eight-at-a-time read of 13 digits agrees with the plain one.
func TestTimeAtEnd(t *testing.T) {
	tests := []struct {
		line string
		want int64
	}{
		{`{"t":1795918957919}`, 1795918957919},
		{`{"t":1000000000000}`, 1000000000000},
		{`{"t":9999999999999}`, 9999999999999},
		{`{"t":1234567890123}`, 1234567890123},
		{`{"t":0000000000001}`, 1},
		{`{"a":1,"t":42}`, 42},
		{`{"t":123456789012345678}`, 123456789012345678},
		{`{"t":1234567890123456789}`, 0}, // 19 digits: not a time this reader takes
		{`{"t":17959189579x9}`, 0},
		{`{"t":1795918957:19}`, 0},
		{`{"xt":1795918957919}`, 0},
		{`{"t":"1795918957919"}`, 0},
		{`{"s":1795918957919}`, 0},
		{`{"t":}`, 0},
		{`{}`, 0},
	}
	for _, tc := range tests {
		if got := timeAtEnd([]byte(tc.line)); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.line, got, tc.want)
		}
	}
	for d := int64(1); d < 1e13; d = d*7 + 3 {
		line := fmt.Sprintf(`{"t":%013d}`, d)
		if got := timeAtEnd([]byte(line)); got != d {
			t.Fatalf("%s: %d", line, got)
		}
	}
}

// TestPathEnd: the end of a JSON string's contents, found eight bytes at a time,
// wherever the quote, escape or control byte falls in a word.
func TestPathEnd(t *testing.T) {
	for n := 0; n < 20; n++ {
		base := strings.Repeat("a", n)
		for _, tc := range []struct {
			tail  string
			plain bool
		}{{`"`, true}, {`\"`, false}, {"\x01\"", false}, {"\x1f\"", false}, {"\x7f\"", true}, {"\xff\"", true}, {" \"", true}} {
			b := []byte(base + tc.tail + `,"ok":true,`)
			want := n + len(tc.tail) - 1
			if !tc.plain {
				want = n
			}
			if i, plain := pathEnd(b); i != want || plain != tc.plain {
				t.Errorf("%q: %d %v, want %d %v", b, i, plain, want, tc.plain)
			}
		}
		if i, plain := pathEnd([]byte(base)); i != n || plain {
			t.Errorf("%q without a quote: %d %v", base, i, plain)
		}
	}
}

// TestPathAfter: the scan's order ('/' before every other byte), strictly, and
// comparePaths, which it is made of.
func TestPathAfter(t *testing.T) {
	tests := []struct {
		prev, cur string
		want      bool
	}{
		{"a", "b", true},
		{"b", "a", false},
		{"a", "a", false},
		{"a", "ab", true},
		{"ab", "a", false},
		{"a/b.png", "a-c.png", true}, // a/ before a-: the directory "a" sorts before "a-c.png"
		{"a-c.png", "a/b.png", false},
		{"img/z.png", "img-1/a.png", true},
		{"d/img0000009.png", "d/img0000010.png", true},
		{"d/img0000010.png", "d/img0000009.png", false},
		{"same/long/prefix/0001.png", "same/long/prefix/0001.png", false},
		{"same/long/prefix/0001.png", "same/long/prefix/0001.pnh", true},
		{"a/", "a\x00", true}, // '/' is lower than every byte, NUL included
		{"a\x00", "a/", false},
		{"ÿ", "þ", false},
	}
	for _, tc := range tests {
		if got := pathAfter([]byte(tc.prev), []byte(tc.cur)); got != tc.want {
			t.Errorf("pathAfter(%q, %q) = %v, want %v", tc.prev, tc.cur, got, tc.want)
		}
	}
	if !pathAfter(nil, []byte("x")) {
		t.Error("the first path must pass")
	}
	// comparePaths is a strict total order: antisymmetric, 0 only for equal paths,
	// and it sorts a scan's listing as the scan wrote it.
	scan := []string{"a/b/c.png", "a/b/d.png", "a/b-c.png", "a/b.png", "a/ba.png", "a b/x.png", "a-b.png", "a.png", "ab/c.png", "b"}
	for i, x := range scan {
		for j, y := range scan {
			if got, want := comparePaths([]byte(x), []byte(y)), cmpInt(i, j); got != want {
				t.Errorf("comparePaths(%q, %q) = %d, want %d", x, y, got, want)
			}
		}
	}
}

// FuzzParseLine: no input panics the fast parser, and on every line the writer can
// produce it agrees with encoding/json on path, ok, stage and time.
func FuzzParseLine(f *testing.F) {
	f.Add([]byte(`{"path":"a","ok":true,"result":{"x":[1,2,{"y":"}"}]},"ms":3,"t":5}`))
	f.Add([]byte(`{"path":"\u00e9","ok":false,"stage":"timeout","error":"\\"}`))
	f.Add([]byte(`{"path":"a","ok":true,"result":"</script>"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var li lineInfo
		parseLine(data, &li) // must not panic
		var r Record
		if json.Unmarshal(data, &r) != nil || r.Path == "" {
			return
		}
		canon, err := json.Marshal(r)
		if err != nil {
			return
		}
		if err := parseLine(canon, &li); err != nil {
			t.Fatalf("%s: %v", canon, err)
		}
		if li.path != r.Path || li.ok != r.OK || (!r.OK && li.stage != r.Stage) || li.t != r.T {
			t.Fatalf("%s: fast %+v, encoding/json %+v", canon, li, r)
		}
		var full lineInfo
		err = parseLineFull(canon, &full)
		if err != nil || full != (lineInfo{path: r.Path, ok: r.OK, stage: r.Stage, t: r.T}) {
			t.Fatalf("%s: full parser %+v, %v; encoding/json %+v", canon, full, err, r)
		}
	})
}

func TestCSVCell(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"a.png", "a.png"},
		{"=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"},
		{"+1+2", "'+1+2"},
		{"-2+3", "'-2+3"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\tx", "'\tx"},
		{"\rx", "'\rx"},
		{"a=b", "a=b"},
		{"{\"label\":\"=1+1\"}", "{\"label\":\"=1+1\"}"},
	}
	for _, tc := range tests {
		if got := CSVCell(tc.in); got != tc.want {
			t.Errorf("CSVCell(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestCollectCSVInjection: a data file name, an error and an answer that start like a
// formula come out with a quote in front, double-quoted, and read back as that text.
func TestCollectCSVInjection(t *testing.T) {
	dir, p := newJob(t, 1, 3)
	names := []string{"=cmd|' /C calc'!A0.png", "@SUM(1+1).png", "-1.png"}
	if err := os.WriteFile(job.ShardFile(dir, 0), []byte(strings.Join(names, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = p
	writeResults(t, dir, 0,
		Record{Path: names[0], OK: true, Result: json.RawMessage(`-1`)},
		Record{Path: names[1], Error: "=2+5", Stage: StagePredict},
	)
	var buf bytes.Buffer
	if _, err := Collect(context.Background(), dir, &buf, FormatCSV); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n")[1:] {
		if !strings.HasPrefix(line, `"'`) {
			t.Errorf("row not escaped and quoted: %s", line)
		}
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"'" + names[0], "true", "", "", "0", "'-1"},
		{"'" + names[1], "false", "predict", "'=2+5", "0", ""},
		{"'" + names[2], "false", "pending", "no result yet", "0", ""},
	}
	for i, w := range want {
		if fmt.Sprint(rows[i+1]) != fmt.Sprint(w) {
			t.Errorf("row %d: %q, want %q", i, rows[i+1], w)
		}
	}
	for _, row := range rows[1:] {
		for _, cell := range row {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("cell %q starts like a formula", cell)
			}
		}
	}
}

// TestWalk: shards come in order whatever the number of readers, each input once
// with its final line as written; a corrupt line names file and line.
func TestWalk(t *testing.T) {
	dir, p := newJob(t, 7, 5)
	for s := range p {
		recs := []Record{failed(p[s][0], StageCrash), ok(p[s][0], 1), failed(p[s][0], StageTimeout), failed(p[s][1], StagePredict), ok(p[s][2], s)}
		writeResults(t, dir, s, recs...)
	}
	for _, workers := range []int{1, 2, 5} {
		var seen []int
		err := Walk(context.Background(), dir, len(p), WalkOptions{Workers: workers}, func(s *Shard) error {
			seen = append(seen, s.Index)
			if len(s.Entries) != 5 || s.Status.OK != 2 || s.Status.Failed != 1 || s.Status.Pending != 2 || s.Status.State != StatePartial {
				t.Errorf("shard %d: %+v", s.Index, s.Status)
			}
			e := s.Entries[0]
			if !e.OK || !bytes.Contains(e.Line, []byte(`"ok":true`)) || e.T == 0 || s.First == 0 || s.Last < s.First {
				t.Errorf("shard %d: later ok must win: %+v %s", s.Index, e, e.Line)
			}
			if e := s.Entries[1]; e.OK || e.Stage != StagePredict {
				t.Errorf("shard %d: failed entry %+v", s.Index, e)
			}
			for k, e := range s.Entries {
				if e.Path != p[s.Index][k] {
					t.Errorf("shard %d entry %d is %s, want %s", s.Index, k, e.Path, p[s.Index][k])
				}
			}
			return nil
		})
		if err != nil || fmt.Sprint(seen) != "[0 1 2 3 4 5 6]" {
			t.Fatalf("workers %d: order %v, %v", workers, seen, err)
		}
	}
	stop := errors.New("stop")
	n := 0
	if err := Walk(context.Background(), dir, len(p), WalkOptions{}, func(*Shard) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("stop: %v after %d", err, n)
	}
	f, _ := os.OpenFile(job.ResultFile(dir, 3), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("{not json}\n")
	f.Close()
	err := Walk(context.Background(), dir, len(p), WalkOptions{}, func(*Shard) error { return nil })
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "000003.jsonl:6:") {
		t.Errorf("corrupt: %v", err)
	}
}

func TestRawField(t *testing.T) {
	line := []byte(`{"path":"a","ok":true,"result":{"faces":[{"x":1}],"s":"}"},"error":"e \"q\"","ms":3}`)
	for key, want := range map[string]string{"result": `{"faces":[{"x":1}],"s":"}"}`, "error": `"e \"q\""`, "ms": "3", "path": `"a"`} {
		if got, ok := RawField(line, key); !ok || string(got) != want {
			t.Errorf("%s: %s %v, want %s", key, got, ok, want)
		}
	}
	for _, bad := range []string{`{"path":"a"}`, `[1]`, `{"result":`, ``} {
		if got, ok := RawField([]byte(bad), "result"); ok {
			t.Errorf("%s: %s", bad, got)
		}
	}
}
