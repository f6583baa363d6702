package runner

import (
	"bytes"
	"strconv"
)

// idScanner finds the ids an answer line names without decoding it, a byte at a time
// and in constant memory: it reads lines that cannot be decoded (invalid JSON, wrong
// types) and lines longer than the answer cap, so that the inputs they answer fail at
// once with the reason instead of waiting for the item timeout.
//
// It recognises "id" keys of the top-level object ({"id":17,…}) and of the objects in
// a top-level "batch" array ({"batch":[{"id":"3",…},…]}), with values written as 17
// or "17". It tracks string and nesting state only, so whatever follows an id (NaN,
// truncated objects, bytes that are not UTF-8) does not hide it.
type idScanner struct {
	depth   int
	kinds   uint64 // bit d set: the container at depth d (below 64) is an array
	inStr   bool
	esc     bool
	str     [24]byte // the current string's first bytes
	strLen  int      // its length (may exceed len(str))
	lastStr bool     // a string just ended: a key if ':' follows
	topKey  string   // the last key read at depth 1
	want    bool     // the next value is an id
	inNum   bool     // reading an unquoted id value
	val     [24]byte
	valLen  int
	ids     []uint64
}

// maxScannedIDs bounds the ids kept from one line (a batch never holds more than the
// window of requests in flight).
const maxScannedIDs = maxWindow

func (s *idScanner) reset() { *s = idScanner{ids: s.ids[:0]} }

// Write scans p; it never fails.
func (s *idScanner) Write(p []byte) (int, error) {
	for i := 0; i < len(p); i++ {
		if s.inStr && !s.esc {
			// The bulk of a long line is string content: skip it in one search.
			j := bytes.IndexAny(p[i:], "\"\\")
			if j < 0 {
				j = len(p) - i
			}
			if s.strLen < len(s.str) {
				copy(s.str[s.strLen:], p[i:i+j])
			}
			s.strLen += j
			i += j
			if i == len(p) {
				break
			}
		}
		s.byte(p[i])
	}
	return len(p), nil
}

// finish ends the line and returns the ids found.
func (s *idScanner) finish() []uint64 {
	if s.inNum {
		s.endNum()
	}
	return s.ids
}

func (s *idScanner) byte(c byte) {
	if s.inStr {
		switch {
		case s.esc:
			s.esc = false
			s.strByte(c)
		case c == '\\':
			s.esc = true
			s.strByte(c)
		case c == '"':
			s.inStr = false
			s.endStr()
		default:
			s.strByte(c)
		}
		return
	}
	if s.inNum {
		switch c {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			s.endNum()
		default:
			if s.valLen < len(s.val) {
				s.val[s.valLen] = c
			}
			s.valLen++
			return
		}
	}
	switch c {
	case ' ', '\t', '\r', '\n':
		return
	case '"':
		s.inStr, s.strLen = true, 0
		return
	case ':':
		if s.lastStr && s.strLen <= len(s.str) {
			key := string(s.str[:s.strLen])
			if s.depth == 1 {
				s.topKey = key
			}
			s.want = key == "id" && (s.depth == 1 || (s.depth == 3 && s.topKey == "batch"))
		}
		s.lastStr = false
		return
	}
	s.lastStr = false
	if s.want {
		s.want = false
		if c >= '0' && c <= '9' {
			s.inNum, s.val[0], s.valLen = true, c, 1
			return
		}
	}
	switch c {
	case '{', '[':
		if s.depth < 64 {
			s.kinds &^= 1 << s.depth
			if c == '[' {
				s.kinds |= 1 << s.depth
			}
		}
		s.depth++
	case '}', ']':
		// A closer also closes what was left open inside it ({"a":[} ends both), so a
		// torn value does not shift the depth of the answers that follow.
		arr := uint64(0)
		if c == ']' {
			arr = 1
		}
		for s.depth > 0 {
			s.depth--
			if s.depth >= 64 || (s.kinds>>s.depth)&1 == arr {
				break
			}
		}
	}
}

func (s *idScanner) strByte(c byte) {
	if s.strLen < len(s.str) {
		s.str[s.strLen] = c
	}
	s.strLen++
}

// endStr closes a string: an id value written as "17", or a possible key.
func (s *idScanner) endStr() {
	if s.want {
		s.want = false
		if s.strLen <= len(s.str) {
			s.addID(s.str[:s.strLen])
		}
		return
	}
	s.lastStr = true
}

func (s *idScanner) endNum() {
	s.inNum = false
	if s.valLen <= len(s.val) {
		s.addID(s.val[:s.valLen])
	}
}

func (s *idScanner) addID(b []byte) {
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err == nil && len(s.ids) < maxScannedIDs {
		s.ids = append(s.ids, n)
	}
}
