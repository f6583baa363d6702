package runner

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestParseLine(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		hs      bool
		ready   bool
		ids     []uint64
		oks     []bool
		notProt bool
	}{
		{"handshake", `{"scv":1,"ready":true,"model":"m","max_batch":16}`, true, true, nil, nil, false},
		{"not ready", `{"scv":1,"ready":false,"error":"no torch"}`, true, false, nil, nil, false},
		{"answer", `{"id":"17","ok":true,"result":{"a":1}}`, false, false, []uint64{17}, []bool{true}, false},
		{"numeric id", `{"id":17,"ok":false,"error":"x"}`, false, false, []uint64{17}, []bool{false}, false},
		{"batch answer", `{"batch":[{"id":"1","ok":true},{"id":"2","ok":false,"error":"e"}]}`, false, false, []uint64{1, 2}, []bool{true, false}, false},
		{"library chatter", `Loading checkpoint shards: 100%`, false, false, nil, nil, true},
		{"json without id", `{"progress":0.5}`, false, false, nil, nil, true},
		{"bad id", `{"id":"x","ok":true}`, false, false, nil, nil, true},
		{"truncated", `{"id":"1","ok":tr`, false, false, nil, nil, true},
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
			}
		})
	}
}

func FuzzParseLine(f *testing.F) {
	for _, s := range []string{`{"scv":1,"ready":true}`, `{"id":"1","ok":true,"result":{}}`, `{"batch":[{"id":2}]}`, `{"id":1e99}`, "\x00{", `{"batch":null,"id":"3"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		hs, out, err := parseLine(line, nil)
		if err != nil && (hs != nil || len(out) > 0) {
			t.Fatalf("error with results: %v %+v %+v", err, hs, out)
		}
		for _, r := range out {
			if r.ok && !json.Valid(r.result) {
				t.Fatalf("ok answer with invalid result %q", r.result)
			}
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
