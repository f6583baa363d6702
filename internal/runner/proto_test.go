package runner

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/scivision-hpc/scv-hpc/internal/results"
)

func TestParseLine(t *testing.T) {
	tests := []struct {
		name     string
		line     string
		hs       bool
		ready    bool
		ids      []uint64
		oks      []bool
		notProt  bool
		unusable string // substring of the reason when the answers are unusable
		result   string // the first answer's result, when set
	}{
		{name: "handshake", line: `{"scv":1,"ready":true,"model":"m","max_batch":16}`, hs: true, ready: true},
		{name: "not ready", line: `{"scv":1,"ready":false,"error":"no torch"}`, hs: true},
		{name: "answer", line: `{"id":"17","ok":true,"result":{"a":1}}`, ids: []uint64{17}, oks: []bool{true}, result: `{"a":1}`},
		{name: "numeric id", line: `{"id":17,"ok":false,"error":"x"}`, ids: []uint64{17}, oks: []bool{false}},
		{name: "batch answer", line: `{"batch":[{"id":"1","ok":true},{"id":"2","ok":false,"error":"e"}]}`, ids: []uint64{1, 2}, oks: []bool{true, false}},
		{name: "library chatter", line: `Loading checkpoint shards: 100%`, notProt: true},
		{name: "json without id", line: `{"progress":0.5}`, notProt: true},
		{name: "bad id", line: `{"id":"x","ok":true}`, notProt: true},
		{name: "broken json without id", line: `{"progress":0.5,`, notProt: true},
		{name: "truncated", line: `{"id":"1","ok":tr`, ids: []uint64{1}, oks: []bool{false}, unusable: "not valid protocol JSON"},
		{name: "garbage after the id", line: `{"id":"5","ok":true,"result":{"x":}}`, ids: []uint64{5}, oks: []bool{false}, unusable: "invalid character"},
		{name: "id after the garbage", line: `{"result":[1,2,,3],"id":6}`, ids: []uint64{6}, oks: []bool{false}, unusable: "not valid protocol JSON"},
		{name: "ok of the wrong type", line: `{"id":"7","ok":"yes","result":1}`, ids: []uint64{7}, oks: []bool{false}, unusable: "cannot unmarshal string"},
		{name: "error of the wrong type", line: `{"id":8,"ok":false,"error":{"msg":"x"}}`, ids: []uint64{8}, oks: []bool{false}, unusable: "cannot unmarshal object"},
		{name: "broken batch", line: `{"batch":[{"id":"1","ok":true,"result":{"a":[}},{"id":"2","ok":true}]}`, ids: []uint64{1, 2}, oks: []bool{false, false}, unusable: "not valid protocol JSON"},
		{name: "nested ids are not answers", line: `{"result":{"id":9},"ok":true,"id":"10","x":{`, ids: []uint64{10}, oks: []bool{false}, unusable: "not valid"},
		{name: "NaN as Python writes it", line: `{"id":"11","ok":true,"result":{"score":NaN,"v":[Infinity,-Infinity,1.5],"s":"NaN -Infinity"}}`,
			ids: []uint64{11}, oks: []bool{true}, result: `{"score":null,"v":[null,null,1.5],"s":"NaN -Infinity"}`},
		{name: "invalid UTF-8 in the result", line: "{\"id\":\"12\",\"ok\":true,\"result\":{\"label\":\"caf\xe9 \xff\xfe ok\"}}",
			ids: []uint64{12}, oks: []bool{true}, result: `{"label":"caf\ufffd \ufffd ok"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs, out, err := parseLine([]byte(tt.line+"\n"), nil)
			if (err != nil) != tt.notProt {
				t.Fatalf("err = %v", err)
			}
			if (hs != nil) != tt.hs || (hs != nil && hs.Ready != tt.ready) {
				t.Fatalf("handshake = %+v", hs)
			}
			if len(out) != len(tt.ids) {
				t.Fatalf("responses = %+v", out)
			}
			for i, r := range out {
				if r.seq != tt.ids[i] || r.ok != tt.oks[i] || (!r.ok && r.err == "") || (r.ok && len(r.result) == 0) {
					t.Errorf("response %d = %+v", i, r)
				}
				if r.unusable != (tt.unusable != "") || !strings.Contains(r.err, tt.unusable) {
					t.Errorf("response %d = %+v, want unusable with %q", i, r, tt.unusable)
				}
				if r.ok && !utf8.Valid(r.result) {
					t.Errorf("response %d: result %q is not UTF-8", i, r.result)
				}
			}
			if tt.result != "" {
				var got, want any
				if err := json.Unmarshal(out[0].result, &got); err != nil {
					t.Fatalf("result %q: %v", out[0].result, err)
				}
				json.Unmarshal([]byte(tt.result), &want)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("result %s, want %s", out[0].result, tt.result)
				}
			}
		})
	}
}

// FuzzParseLine: whatever a model prints, the parser does not panic, gives answers
// only with ids, ok answers only with valid UTF-8 JSON results (what the results
// writer can store), and unusable answers only with a reason.
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{`{"scv":1,"ready":true}`, `{"id":"1","ok":true,"result":{}}`, `{"batch":[{"id":2}]}`, `{"id":1e99}`, "\x00{",
		`{"batch":null,"id":"3"}`, `{"id":"4","ok":true,"result":[NaN,-Infinity]}`, "{\"id\":5,\"ok\":true,\"result\":\"\xff\"}",
		`{"id":"6","ok":tr`, `{"batch":[{"id":"7","ok":"x"}]}`, `{"id":"8","result":"\"NaN\\\""}`, `{'scv': 1, 'ready': True}`, `{"scv":"1"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		hs, out, err := parseLine(line, nil)
		if err != nil && (hs != nil || len(out) > 0) {
			t.Fatalf("error with results: %v %+v %+v", err, hs, out)
		}
		if err != nil {
			// A line taken for a failed handshake gets a short reason, valid UTF-8.
			if why := badHandshake(line, err); len(why) > maxReason+len("…") || !utf8.ValidString(why) {
				t.Fatalf("badHandshake reason of %d bytes: %q", len(why), why)
			}
		}
		for _, r := range out {
			if r.ok && (!json.Valid(r.result) || !utf8.Valid(r.result)) {
				t.Fatalf("ok answer with a result that cannot be stored: %q", r.result)
			}
			if r.ok {
				if _, err := json.Marshal(results.Record{Path: "p", OK: true, Result: r.result}); err != nil {
					t.Fatalf("result %q cannot be written: %v", r.result, err)
				}
			}
			if r.unusable && (r.ok || r.err == "") {
				t.Fatalf("unusable answer without a reason: %+v", r)
			}
		}
		// The scanner reads any line in pieces as it reads it whole.
		var whole, parts idScanner
		whole.Write(line)
		for i := 0; i < len(line); i += 3 {
			parts.Write(line[i:min(i+3, len(line))])
		}
		var bytewise idScanner
		for _, c := range line {
			bytewise.byte(c)
		}
		if a, b, c := whole.finish(), parts.finish(), bytewise.finish(); !slices.Equal(a, b) || !slices.Equal(a, c) {
			t.Fatalf("ids %v read whole, %v in pieces, %v byte by byte", a, b, c)
		}
	})
}

func FuzzAppendRequest(f *testing.F) {
	for _, s := range []string{"a/b.png", `we"ird\name.png`, "tab\there", "ünï/cødé.jpg", "\xff\xfe.png", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rel string) {
		b := appendRequest(nil, 42, rel)
		var req struct{ ID, Path string }
		if err := json.Unmarshal(b, &req); err != nil {
			t.Fatalf("request %q is not valid JSON: %v", b, err)
		}
		if req.ID != "42" {
			t.Fatalf("id %q", req.ID)
		}
		if utf8.ValidString(rel) && req.Path != "/data/"+rel {
			t.Fatalf("path %q came back as %q", rel, req.Path)
		}
	})
}

// TestBadHandshake: a line that tries to be the handshake and cannot be one is told
// apart from other lines that are not protocol (a library's chatter, an answer that
// happens to name scv).
func TestBadHandshake(t *testing.T) {
	for _, tc := range []struct {
		line string
		bad  bool
	}{
		{`{'scv': 1, 'ready': True}`, true},
		{`{"scv":"1","ready":true}`, true},
		{`{"scv":1,"ready":"yes"}`, true},
		{`  {"scv": null, "ready": true}`, true},
		{`Loading weights from {"scv": 1}`, false}, // chatter: not an object line
		{`{"progress": 0.5}`, false},
		{`{"id":"3","ok":true,"result":{"scv":1}}`, false},
		{`{"id":[3],"ok":true,"scv":1}`, false},
		{`{"batch":[{"id":"3","ok":true}],"scv":"x"}`, false},
		{``, false},
		{`{"ready": true, "scv": "1"}`, true}, // json.dumps of a dict in another order
		// Chatter that mentions scv but not as the object's own key: a JSON log line of
		// a logger named scv, a printed config, Python's print(dict) of a value.
		{`{"level":"info","logger":"scv","msg":"loading weights"}`, false},
		{`{"name": "scv", "model": {"arch": "resnet50"}}`, false},
		{`{"config": {"scv": 1, "ready": "yes"}}`, false},
		{`{'framework': 'torch', 'wrapper': 'scv'}`, false},
		{`{'config': {'scv': 1}}`, false},
		{`{"scv":1,"ready":`, false}, // cut short: the handshake may follow (TestHeldOddModels)
	} {
		_, _, err := parseLine([]byte(tc.line), nil)
		if err == nil { // an answer: never taken for a handshake
			if tc.bad {
				t.Errorf("%q parsed as protocol", tc.line)
			}
			continue
		}
		if got := badHandshake([]byte(tc.line), err); (got != "") != tc.bad {
			t.Errorf("badHandshake(%q) = %q, want bad %v", tc.line, got, tc.bad)
		}
	}
}

// TestBadHandshakeBounded: the reason given for a hostile line of megabytes (a number
// of 4 MiB as the version, which encoding/json quotes whole in its error) is short.
func TestBadHandshakeBounded(t *testing.T) {
	for _, line := range []string{
		`{"scv":` + strings.Repeat("9", 4<<20) + `,"ready":true}`,
		`{"scv":1,"ready":true,"model":` + strings.Repeat("9", 4<<20) + `}`,
		`{'scv': ` + strings.Repeat("9", 4<<20) + `}`,
	} {
		_, _, err := parseLine([]byte(line), nil)
		if err == nil {
			t.Fatalf("%.40q parsed as protocol", line)
		}
		why := badHandshake([]byte(line), err)
		if why == "" || len(why) > 1024 || !utf8.ValidString(why) {
			t.Errorf("badHandshake(%.40q…) = %d bytes (%.80q…), want a short reason", line, len(why), why)
		}
	}
}
