package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unsafe"
)

// lineInfo is what a merge needs from one result line, read without decoding the
// rest: the model's answer is skipped over, never unmarshalled.
type lineInfo struct {
	path  string
	ok    bool
	stage string
	t     int64 // unix milliseconds when written; 0 for lines written before it was recorded
}

var (
	errNotObject = errors.New("not a JSON object")
	errSyntax    = errors.New("malformed JSON")
	errNoPath    = errors.New("no path")
)

// parseLine reads the top-level keys path, ok, stage and t of one result line (no
// trailing newline) and skips every other value, checking only the structure
// (strings closed, brackets balanced). Escaped strings are decoded by encoding/json;
// the others are views of line (see viewString), which must then never change.
func parseLine(line []byte) (lineInfo, error) {
	if li, ok := parseOKLine(line); ok {
		return li, nil
	}
	return parseLineFull(line)
}

var (
	okPrefix = []byte(`{"path":"`)
	okMiddle = []byte(`","ok":true,`)
	timeKey  = []byte(`"t":`)
)

// parseOKLine is the fast path for the line the Writer writes for an answer,
// `{"path":"P","ok":true,…,"t":N}` with P free of escapes: the path is cut out and
// the time read from the end, without walking the answer in between. It reports
// false for any other line, which parseLineFull then reads.
func parseOKLine(line []byte) (lineInfo, bool) {
	var li lineInfo
	if !bytes.HasPrefix(line, okPrefix) || line[len(line)-1] != '}' {
		return li, false
	}
	rest := line[len(okPrefix):]
	q := bytes.IndexByte(rest, '"')
	if q <= 0 || bytes.IndexByte(rest[:q], '\\') >= 0 || !bytes.HasPrefix(rest[q:], okMiddle) {
		return li, false
	}
	for _, c := range rest[:q] {
		if c < 0x20 {
			return li, false
		}
	}
	li.path, li.ok = viewString(rest[:q]), true
	end := len(line) - 1
	d := end
	for d > 0 && line[d-1] >= '0' && line[d-1] <= '9' {
		d--
	}
	if d < end && end-d < 19 && bytes.HasSuffix(line[:d], timeKey) {
		for _, c := range line[d:end] {
			li.t = li.t*10 + int64(c-'0')
		}
	}
	return li, true
}

// parseLineFull is parseLine for any line: it walks every top-level key.
func parseLineFull(line []byte) (lineInfo, error) {
	var li lineInfo
	p := &lexer{b: line}
	p.space()
	if !p.eat('{') {
		return li, errNotObject
	}
	p.space()
	if p.eat('}') {
		return li, errNoPath
	}
	for {
		p.space()
		key, esc, ok := p.str()
		if !ok {
			return li, errSyntax
		}
		p.space()
		if !p.eat(':') {
			return li, errSyntax
		}
		p.space()
		if esc {
			key = nil // no key this reader wants is escaped; skip the value
		}
		switch string(key) {
		case "path":
			s, err := p.strValue()
			if err != nil {
				return li, err
			}
			li.path = s
		case "stage":
			s, err := p.strValue()
			if err != nil {
				return li, err
			}
			li.stage = s
		case "ok":
			switch {
			case bytes.HasPrefix(p.b[p.i:], []byte("true")):
				li.ok, p.i = true, p.i+4
			case bytes.HasPrefix(p.b[p.i:], []byte("false")):
				li.ok, p.i = false, p.i+5
			default:
				return li, errors.New("ok is not a boolean")
			}
		case "t":
			start := p.i
			if !p.skip() {
				return li, errSyntax
			}
			n, err := strconv.ParseInt(string(p.b[start:p.i]), 10, 64)
			if err != nil {
				return li, errors.New("t is not an integer")
			}
			li.t = n
		default:
			if !p.skip() {
				return li, errSyntax
			}
		}
		p.space()
		if p.eat(',') {
			continue
		}
		if !p.eat('}') {
			return li, errSyntax
		}
		break
	}
	p.space()
	if p.i != len(p.b) {
		return li, errors.New("data after the object")
	}
	if li.path == "" {
		return li, errNoPath
	}
	return li, nil
}

// lexer walks one line of JSON.
type lexer struct {
	b []byte
	i int
}

func (p *lexer) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		default:
			return
		}
	}
}

func (p *lexer) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a string token and returns its raw contents (without quotes) and whether
// it holds escapes.
func (p *lexer) str() (raw []byte, escaped, ok bool) {
	if !p.eat('"') {
		return nil, false, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			raw = p.b[start:p.i]
			p.i++
			return raw, escaped, true
		case c == '\\':
			escaped = true
			p.i += 2
		case c < 0x20:
			return nil, false, false
		default:
			p.i++
		}
	}
	return nil, false, false
}

// strValue reads a string value, decoded.
func (p *lexer) strValue() (string, error) {
	start := p.i
	raw, esc, ok := p.str()
	if !ok {
		return "", errors.New("expected a string")
	}
	if !esc {
		return viewString(raw), nil
	}
	var s string
	if err := json.Unmarshal(p.b[start:p.i], &s); err != nil {
		return "", err
	}
	return s, nil
}

// skip passes over one value of any kind.
func (p *lexer) skip() bool {
	if p.i >= len(p.b) {
		return false
	}
	switch c := p.b[p.i]; c {
	case '"':
		_, _, ok := p.str()
		return ok
	case '{', '[':
		depth := 0
		for p.i < len(p.b) {
			switch p.b[p.i] {
			case '"':
				if _, _, ok := p.str(); !ok {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					p.i++
					return true
				}
			}
			p.i++
		}
		return false
	default:
		start := p.i
		for p.i < len(p.b) {
			switch p.b[p.i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return p.i > start
			}
			p.i++
		}
		return p.i > start
	}
}

// viewString is b as a string without a copy. The merge reads each file into a
// buffer of its own that nothing writes afterwards, so the strings stay valid (and
// keep the buffer alive) as long as they are referenced.
func viewString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// RawField returns the raw JSON value of the top-level key of a result line (such
// as Entry.Line), without decoding the others; false when the line has no such key
// or is not an object. The value points into line.
func RawField(line []byte, key string) ([]byte, bool) {
	p := &lexer{b: line}
	p.space()
	if !p.eat('{') {
		return nil, false
	}
	p.space()
	if p.eat('}') {
		return nil, false
	}
	for {
		p.space()
		k, esc, ok := p.str()
		if !ok {
			return nil, false
		}
		p.space()
		if !p.eat(':') {
			return nil, false
		}
		p.space()
		start := p.i
		if !p.skip() {
			return nil, false
		}
		if !esc && string(k) == key {
			return line[start:p.i], true
		}
		p.space()
		if !p.eat(',') {
			return nil, false
		}
	}
}
