package results

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
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
// It fills *li field by field: returned by value, the struct would be stored in
// parts and loaded whole, which stalls (a measured third of the time of a line).
func parseLine(line []byte, li *lineInfo) error {
	if parseOKLine(line, li) {
		li.t = timeAtEnd(line)
		return nil
	}
	*li = lineInfo{}
	return parseLineFull(line, li)
}

var (
	okPrefix = []byte(`{"path":"`)
	okMiddle = []byte(`","ok":true,`)
	timeKey  = []byte(`"t":`)
)

// parseOKLine is the fast path for the line the Writer writes for an answer,
// `{"path":"P","ok":true,…}` with P free of escapes: the path is cut out without
// walking the answer after it; the time, li.t, is left 0 (timeAtEnd reads it). It
// reports false for any other line, which parseLineFull then reads.
func parseOKLine(line []byte, li *lineInfo) bool {
	if len(line) < len(okPrefix)+len(okMiddle)+2 || string(line[:len(okPrefix)]) != string(okPrefix) || line[len(line)-1] != '}' {
		return false
	}
	rest := line[len(okPrefix) : len(line)-1]
	q, plain := pathEnd(rest)
	if !plain || q == 0 || len(rest)-q < len(okMiddle) || string(rest[q:q+len(okMiddle)]) != string(okMiddle) {
		return false
	}
	li.path, li.ok, li.stage, li.t = viewString(rest[:q]), true, "", 0
	return true
}

// Byte masks for the word-at-a-time scan of pathEnd.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// pathEnd finds the '"' that ends a JSON string's contents in b: its index, and
// whether no escape ('\\') or control byte (< 0x20) comes before it. It reads eight
// bytes at a time: for each of '"', '\\' and < 0x20 the usual "has a zero byte"
// test marks the first such byte exactly (bytes after it may be marked wrongly,
// which does not matter: only the lowest mark is used).
func pathEnd(b []byte) (int, bool) {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		quote, esc := x^(ones*'"'), x^(ones*'\\')
		m := ((quote-ones)&^quote | (esc-ones)&^esc | (x-ones*0x20)&^x) & highs
		if m != 0 {
			j := i + bits.TrailingZeros64(m)/8
			return j, b[j] == '"'
		}
	}
	for ; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i, true
		case c == '\\' || c < 0x20:
			return i, false
		}
	}
	return len(b), false
}

// timeAtEnd reads N from a line ending in `"t":N}` (N up to 18 digits); 0 when the
// line does not end so. The writer's times have 13 digits: those are read eight
// and five at a time.
func timeAtEnd(line []byte) int64 {
	end := len(line) - 1
	if end >= 13+len(timeKey) && string(line[end-13-len(timeKey):end-13]) == string(timeKey) {
		hi, ok1 := digits8(binary.LittleEndian.Uint64(line[end-13:]))
		lo, ok2 := digits8(binary.LittleEndian.Uint64(line[end-8:]))
		// line[end-13:end-5] and line[end-8:end] overlap by 3 digits: hi holds
		// the first 8, lo the last 8, so t = hi*10^5 + lo mod 10^5.
		if ok1 && ok2 {
			return int64(hi*100_000 + lo%100_000)
		}
	}
	d := end
	var t, scale int64 = 0, 1
	for d > 0 && end-d < 18 {
		c := line[d-1]
		if c < '0' || c > '9' {
			break
		}
		t += int64(c-'0') * scale
		scale *= 10
		d--
	}
	if d < end && d >= len(timeKey) && string(line[d-len(timeKey):d]) == string(timeKey) {
		return t
	}
	return 0
}

// digits8 is the value of eight ASCII digits loaded little-endian into x; false when
// a byte is not a digit.
func digits8(x uint64) (uint64, bool) {
	// Every byte 0x30..0x39: high nibble 3, and adding 6 keeps it 3.
	if x&0xf0f0f0f0f0f0f0f0 != 0x3030303030303030 || (x+0x0606060606060606)&0xf0f0f0f0f0f0f0f0 != 0x3030303030303030 {
		return 0, false
	}
	x -= 0x3030303030303030
	x = (x*10 + x>>8) & 0x00ff00ff00ff00ff
	x = (x*100 + x>>16) & 0x0000ffff0000ffff
	return (x*10000 + x>>32) & 0xffffffff, true
}

// parseLineFull is parseLine for any line: it walks every top-level key.
func parseLineFull(line []byte, li *lineInfo) error {
	p := &lexer{b: line}
	p.space()
	if !p.eat('{') {
		return errNotObject
	}
	p.space()
	if p.eat('}') {
		return errNoPath
	}
	for {
		p.space()
		key, esc, ok := p.str()
		if !ok {
			return errSyntax
		}
		p.space()
		if !p.eat(':') {
			return errSyntax
		}
		p.space()
		if esc {
			key = nil // no key this reader wants is escaped; skip the value
		}
		switch string(key) {
		case "path":
			s, err := p.strValue()
			if err != nil {
				return err
			}
			li.path = s
		case "stage":
			s, err := p.strValue()
			if err != nil {
				return err
			}
			li.stage = s
		case "ok":
			switch {
			case bytes.HasPrefix(p.b[p.i:], []byte("true")):
				li.ok, p.i = true, p.i+4
			case bytes.HasPrefix(p.b[p.i:], []byte("false")):
				li.ok, p.i = false, p.i+5
			default:
				return errors.New("ok is not a boolean")
			}
		case "t":
			start := p.i
			if !p.skip() {
				return errSyntax
			}
			n, err := strconv.ParseInt(string(p.b[start:p.i]), 10, 64)
			if err != nil {
				return errors.New("t is not an integer")
			}
			li.t = n
		default:
			if !p.skip() {
				return errSyntax
			}
		}
		p.space()
		if p.eat(',') {
			continue
		}
		if !p.eat('}') {
			return errSyntax
		}
		break
	}
	p.space()
	if p.i != len(p.b) {
		return errors.New("data after the object")
	}
	if li.path == "" {
		return errNoPath
	}
	return nil
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

// parseResult reads one result line into li: ok lines by parseOKLine's fast
// path, others by parseLineFull. With jsonl the time is not read (collect has no
// use for it).
func parseResult(line []byte, li *lineInfo, jsonl bool) error {
	if parseOKLine(line, li) {
		if !jsonl {
			li.t = timeAtEnd(line)
		}
		return nil
	}
	return parseLineFull(line, li)
}

// corruptLine is the error of a result line that cannot be read.
func corruptLine(resPath string, lineNo int, err error) error {
	return fmt.Errorf("%s:%d: %w: %v; move the file aside and re-run the shard to redo its inputs", resPath, lineNo, ErrCorrupt, err)
}
