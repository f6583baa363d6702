package runner

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"

	"github.com/scivision-hpc/scv-hpc/internal/container"
	"github.com/scivision-hpc/scv-hpc/internal/units"
)

// ProtocolVersion is the predict protocol spoken with model processes.
const ProtocolVersion = 1

// handshake is the model's first line: {"scv":1,"ready":true,"model":"…","max_batch":16}.
type handshake struct {
	SCV      int    `json:"scv"`
	Ready    bool   `json:"ready"`
	Model    string `json:"model"`
	MaxBatch int    `json:"max_batch"`
	Error    string `json:"error"`

	// invalid says why a line that tried to be the handshake cannot be one
	// (badHandshake); the load then fails at once rather than at the load timeout.
	invalid string
}

// badHandshake returns why line, which is not protocol (parseLine's err), is a failed
// attempt at the handshake, or "" when it is just another line. An attempt is an
// object whose own key is scv: a JSON object with a top-level "scv" (as {"scv": "1",
// ...} or {"scv":1,"ready":"yes"}) and no id or batch, or Python's print(dict) of the
// handshake ({'scv': 1, 'ready': True}: no JSON, opening with the key 'scv'). A line
// that only mentions scv (a log line of a logger named scv, a printed config that
// holds such a key deeper down) is chatter, and so is JSON cut short ({"scv":1,"ready":
// of a model whose output was cut): the real handshake may follow. The reason is at
// most maxReason bytes, whatever the line's size.
func badHandshake(line []byte, err error) string {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' || !(bytes.Contains(line, []byte(`"scv"`)) || bytes.Contains(line, []byte(`'scv'`))) {
		return ""
	}
	var keys map[string]json.RawMessage
	if json.Unmarshal(line, &keys) != nil {
		// Not JSON: an attempt only when it opens with the key as Python prints it.
		if !bytes.HasPrefix(bytes.TrimLeft(line[1:], " \t"), []byte(`'scv'`)) {
			return ""
		}
		var w wireLine
		return units.Clip(json.Unmarshal(line, &w).Error(), maxReason)
	}
	if _, ok := keys["scv"]; !ok {
		return ""
	}
	var w wireLine
	if jerr := json.Unmarshal(line, &w); jerr != nil {
		return units.Clip(jerr.Error(), maxReason)
	}
	if w.ID != nil || w.Batch != nil {
		return "" // an answer that names scv among its fields
	}
	return units.Clip(err.Error(), maxReason)
}

// maxReason bounds the reason badHandshake gives: encoding/json quotes a number it
// cannot store whole, and a hostile line may hold one of megabytes.
const maxReason = 200

// response is one answer: {"id":"17","ok":true,"result":{…}} or {"id":"17","ok":false,"error":"…"}.
// An answer that names an id but cannot be used (invalid JSON after the id, fields of
// the wrong type, a line over the answer cap) is a response with ok false, unusable
// set and err saying why: that input fails at once, with no retry.
type response struct {
	seq      uint64
	ok       bool
	unusable bool
	result   json.RawMessage
	err      string
}

// wireLine is any line the model writes on stdout.
type wireLine struct {
	SCV      *int            `json:"scv"`
	Ready    bool            `json:"ready"`
	Model    string          `json:"model"`
	MaxBatch int             `json:"max_batch"`
	ID       json.RawMessage `json:"id"`
	OK       bool            `json:"ok"`
	Result   json.RawMessage `json:"result"`
	Error    string          `json:"error"`
	Batch    []wireLine      `json:"batch"`
}

var errNotProtocol = errors.New("not a protocol line")

// parseID reads an id written as "17" or 17.
func parseID(raw json.RawMessage) (uint64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		raw = raw[1 : len(raw)-1]
	}
	n, err := strconv.ParseUint(string(raw), 10, 64)
	return n, err == nil
}

// parseLine decodes one stdout line into a handshake or responses (appended to out).
// Lines that are not JSON objects of the protocol give errNotProtocol: models built on
// chatty libraries print to stdout, and such lines are logged and skipped.
//
// A line that cannot be decoded but names ids (see idScanner) answers those inputs as
// unusable, with the decoder's reason. NaN, Infinity and -Infinity, which Python's
// json.dumps writes by default, are read as null. A result that is not valid UTF-8
// has each run of bad bytes replaced by U+FFFD, so the results files hold valid UTF-8 JSON.
func parseLine(line []byte, out []response) (*handshake, []response, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' {
		return nil, out, errNotProtocol
	}
	var w wireLine
	err := json.Unmarshal(line, &w)
	if err != nil {
		if fixed, ok := nonFiniteToNull(line); ok {
			w = wireLine{}
			err = json.Unmarshal(fixed, &w)
		}
	}
	if err != nil {
		out, err = unusable(line, out, "the answer is not valid protocol JSON: "+err.Error())
		return nil, out, err
	}
	if w.SCV != nil && w.ID == nil && w.Batch == nil {
		return &handshake{SCV: *w.SCV, Ready: w.Ready, Model: w.Model, MaxBatch: w.MaxBatch, Error: w.Error}, out, nil
	}
	if w.Batch != nil {
		n := len(out)
		for i := range w.Batch {
			if r, ok := toResponse(&w.Batch[i]); ok {
				out = append(out, r)
			}
		}
		if len(out) == n {
			return nil, out, errNotProtocol
		}
		return nil, out, nil
	}
	r, ok := toResponse(&w)
	if !ok {
		return nil, out, errNotProtocol
	}
	return nil, append(out, r), nil
}

// unusable answers every id that line names as unusable for reason; a line naming
// none is not protocol.
func unusable(line []byte, out []response, reason string) ([]response, error) {
	var s idScanner
	s.Write(line)
	ids := s.finish()
	if len(ids) == 0 {
		return out, errNotProtocol
	}
	for _, id := range ids {
		out = append(out, response{seq: id, unusable: true, err: reason})
	}
	return out, nil
}

// nonFiniteToNull returns line with the bare tokens NaN, Infinity and -Infinity
// outside strings replaced by null, and whether it found any.
func nonFiniteToNull(line []byte) ([]byte, bool) {
	var out []byte
	inStr, esc, found := false, false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		if inStr {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			out = append(out, c)
			continue
		}
		if c == '"' {
			inStr = true
		}
		matched := 0
		for _, tok := range []string{"NaN", "Infinity", "-Infinity"} {
			if bytes.HasPrefix(line[i:], []byte(tok)) {
				matched = len(tok)
				break
			}
		}
		if matched == 0 {
			out = append(out, c)
			continue
		}
		out = append(out, "null"...)
		i += matched - 1
		found = true
	}
	return out, found
}

func toResponse(w *wireLine) (response, bool) {
	seq, ok := parseID(w.ID)
	if !ok {
		return response{}, false
	}
	r := response{seq: seq, ok: w.OK, result: w.Result, err: w.Error}
	if r.ok && len(r.result) == 0 {
		r.result = json.RawMessage("null")
	}
	if !utf8.Valid(r.result) {
		// Bad bytes can only sit inside JSON strings: the result stays valid JSON.
		r.result = bytes.ToValidUTF8(r.result, []byte("\uFFFD"))
	}
	if !r.ok && r.err == "" {
		r.err = "model reported a failure without a message"
	}
	return r, true
}

// appendRequest appends {"id":"SEQ","path":"/data/REL"} to b: REL under the data
// directory as the model sees it (container.DataMount).
func appendRequest(b []byte, seq uint64, rel string) []byte {
	b = append(b, `{"id":"`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `","path":`...)
	b = appendJSONString(b, container.DataMount+"/", rel)
	return append(b, '}')
}

// appendJSONString appends the JSON string prefix+s, escaping only what JSON needs.
func appendJSONString(b []byte, prefix, s string) []byte {
	b = append(b, '"')
	b = append(b, prefix...)
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\t':
			b = append(b, '\\', 't')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			// Control characters and bytes of invalid UTF-8 (file names are bytes).
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
