package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// session runs the model in-process on pipes, like the runner runs it.
type session struct {
	t    *testing.T
	in   io.WriteCloser
	out  *bufio.Reader
	code chan int
	errb *bytes.Buffer
}

func startSession(t *testing.T, args ...string) *session {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	s := &session{t: t, in: inW, out: bufio.NewReader(outR), code: make(chan int, 1), errb: &bytes.Buffer{}}
	go func() {
		code := run(args, inR, outW, s.errb)
		outW.Close()
		inR.Close()
		s.code <- code
	}()
	t.Cleanup(func() { inW.Close(); outR.Close() })
	return s
}

func (s *session) send(line string) {
	s.t.Helper()
	if _, err := io.WriteString(s.in, line+"\n"); err != nil {
		s.t.Fatalf("send %s: %v", line, err)
	}
}

func (s *session) recv(v any) {
	s.t.Helper()
	line, err := s.out.ReadBytes('\n')
	if err != nil {
		s.t.Fatalf("read answer: %v (stderr: %s)", err, s.errb)
	}
	if err := json.Unmarshal(line, v); err != nil {
		s.t.Fatalf("answer %q is not JSON: %v", line, err)
	}
}

func TestProtocolSession(t *testing.T) {
	samples := testenv.SampleImages(t)
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.png")
	if err := os.WriteFile(corrupt, []byte("\x89PNG\r\n\x1a\nnot really"), 0o644); err != nil {
		t.Fatal(err)
	}
	blank := filepath.Join(dir, "blank.png")
	var b bytes.Buffer
	_ = png.Encode(&b, image.NewGray(image.Rect(0, 0, 64, 48)))
	if err := os.WriteFile(blank, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	astronaut := filepath.Join(samples, "astronaut.png")
	messi := filepath.Join(samples, "messi5.jpg")

	d := loadDetector(t)
	direct := func(p string) *Result {
		r, err := d.DetectFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	s := startSession(t, "-cascade", testenv.FacesCascade(t))
	var ready Ready
	s.recv(&ready)
	if want := (Ready{SCV: 1, Ready: true, Model: "faces", MaxBatch: 16}); ready != want {
		t.Fatalf("handshake %+v, want %+v", ready, want)
	}

	type answer struct {
		ID     any     `json:"id"`
		OK     bool    `json:"ok"`
		Result *Result `json:"result"`
		Error  string  `json:"error"`
	}
	check := func(got answer, id any, want *Result, errPrefix string) {
		t.Helper()
		if !reflect.DeepEqual(got.ID, id) {
			t.Errorf("id %#v, want %#v", got.ID, id)
		}
		if want != nil {
			if !got.OK || !reflect.DeepEqual(got.Result, want) {
				t.Errorf("answer %+v, want ok with %+v", got, want)
			}
			return
		}
		if got.OK || got.Result != nil || !strings.HasPrefix(got.Error, errPrefix) {
			t.Errorf("answer %+v, want an error starting %q", got, errPrefix)
		}
	}

	// Single requests, including failures that must not stop the model.
	singles := []struct {
		line      string
		id        any
		want      *Result
		errPrefix string
	}{
		{fmt.Sprintf(`{"id":"1","path":%q}`, astronaut), "1", direct(astronaut), ""},
		{fmt.Sprintf(`{"id":"2","path":%q}`, corrupt), "2", nil, "decode " + corrupt + ": "},
		{fmt.Sprintf(`{"id":"3","path":%q}`, filepath.Join(dir, "nope.png")), "3", nil, "open " + filepath.Join(dir, "nope.png")},
		{`{"id":"4","path":`, nil, nil, "bad request line"},
		{`{"id":"5"}`, "5", nil, `bad request line: missing "path"`},
		{`[1,2]`, nil, nil, "bad request line"},
		{fmt.Sprintf(`{"id":6,"path":%q}`, blank), float64(6), direct(blank), ""},
	}
	for _, c := range singles {
		s.send(c.line)
		var a answer
		s.recv(&a)
		check(a, c.id, c.want, c.errPrefix)
	}

	// A batch answers one line per item, in order.
	s.send("") // blank lines are ignored
	s.send(fmt.Sprintf(`{"batch":[{"id":"b1","path":%q},{"id":"b2","path":%q},{"id":"b3","path":%q}]}`, messi, corrupt, astronaut))
	var a1, a2, a3 answer
	s.recv(&a1)
	s.recv(&a2)
	s.recv(&a3)
	check(a1, "b1", direct(messi), "")
	check(a2, "b2", nil, "decode "+corrupt)
	check(a3, "b3", direct(astronaut), "")
	if a1.Result.Count != 1 || a3.Result.Count != 1 {
		t.Errorf("batch found %d and %d faces, want 1 and 1", a1.Result.Count, a3.Result.Count)
	}

	// EOF on stdin: exit 0, nothing more written.
	s.in.Close()
	if rest, _ := io.ReadAll(s.out); len(rest) != 0 {
		t.Errorf("unexpected output after the last answer: %q", rest)
	}
	if code := <-s.code; code != 0 {
		t.Errorf("exit code %d after EOF, want 0 (stderr: %s)", code, s.errb)
	}
}

func TestProtocolNotReady(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "facefinder")
	if err := os.WriteFile(bad, []byte("definitely not a cascade"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  string
	}{
		{"missing file", []string{"-cascade", filepath.Join(dir, "absent")}, ""},
		{"corrupt file", []string{"-cascade", bad}, ""},
		{"env names a corrupt file", nil, bad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("FACES_CASCADE", tt.env)
			var out, errb bytes.Buffer
			code := run(tt.args, strings.NewReader(""), &out, &errb)
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			var r Ready
			if err := json.Unmarshal(out.Bytes(), &r); err != nil {
				t.Fatalf("handshake %q: %v", out.String(), err)
			}
			if r.SCV != 1 || r.Ready || !strings.Contains(r.Error, "cascade") {
				t.Errorf("handshake %+v, want ready:false with an error about the cascade", r)
			}
			if strings.Count(out.String(), "\n") != 1 {
				t.Errorf("want exactly one line on stdout, got %q", out.String())
			}
		})
	}
}

func TestProtocolLongLine(t *testing.T) {
	d := loadDetector(t)
	in := strings.Repeat("x", maxLine+10) + "\n" + `{"id":"after","path":"/nonexistent.png"}` + "\n"
	var out bytes.Buffer
	if err := Serve(d, strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "longer than") || !strings.Contains(lines[1], `"id":"after"`) {
		t.Errorf("answers %q, want a too-long error then the next request's answer", lines)
	}
}

func TestParseRequest(t *testing.T) {
	tests := []struct {
		line    string
		items   int
		wantErr string
	}{
		{`{"id":"1","path":"/data/a.png"}`, 1, ""},
		{`{"id":1,"path":"/data/a.png"}`, 1, ""},
		{`{"batch":[{"id":"1","path":"a"},{"id":"2","path":"b"}]}`, 2, ""},
		{`{"batch":[]}`, 0, ""},
		{`{"batch":[{"id":"1"}]}`, 0, "batch item 0"},
		{`{"batch":[{"id":"1","path":"a"}],"id":"x"}`, 0, "together"},
		{`{"path":"a"}`, 0, `missing "id"`},
		{`{"id":null,"path":"a"}`, 0, `missing "id"`},
		{`{"id":"1","path":"a","extra":1}`, 0, "unknown field"},
		{`{"id":"1","path":"a"} {"id":"2","path":"b"}`, 0, "more than one"},
		{`nonsense`, 0, "bad request line"},
	}
	for _, tt := range tests {
		items, err := ParseRequest([]byte(tt.line))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseRequest(%s) = %v, want error containing %q", tt.line, err, tt.wantErr)
			}
			continue
		}
		if err != nil || len(items) != tt.items {
			t.Errorf("ParseRequest(%s) = %d items, %v; want %d items", tt.line, len(items), err, tt.items)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(`{"id":"1","path":"/data/a.png"}`))
	f.Add([]byte(`{"batch":[{"id":"1","path":"a"},{"id":2,"path":"b"}]}`))
	f.Add([]byte(`{"id":{"x":[1]},"path":"\u0000"}`))
	f.Add([]byte(`{"batch":null}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		items, err := ParseRequest(line)
		if err != nil {
			if items != nil {
				t.Fatalf("items %v with error %v", items, err)
			}
			return
		}
		for _, it := range items {
			if it.Path == "" || len(it.ID) == 0 || string(it.ID) == "null" {
				t.Fatalf("accepted item without id or path: %+v from %q", it, line)
			}
			// The id is echoed back verbatim: it must be valid JSON.
			if !json.Valid(it.ID) {
				t.Fatalf("id %q is not valid JSON", it.ID)
			}
		}
		// idOf never fails and always yields valid JSON for the error answer.
		if id := idOf(line); !json.Valid(id) {
			t.Fatalf("idOf(%q) = %q, not JSON", line, id)
		}
	})
}
