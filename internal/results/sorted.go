package results

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// listLine is one input of a shard list: bytes start..end of shardBuf.list.
type listLine struct{ start, end int }

// readSorted is read's path for a shard whose list sorts strictly upwards in scan
// order (see comparePaths), as every list the scan writes does: no path is listed
// twice, and a result finds its input by position, not by a hash of its path. The
// writer appends answers in batches, each batch in list order, so a result is
// first compared with the input after the last result's one, and searched for
// (binary search) only when that is not it. The final line of each input is
// Final's. It reports false, having read no result, for a list that is not sorted
// (such as a list from --files-from, kept in its own order), which merge then
// reads. With jsonl, the inputs go to the shard's output spans (see Collect)
// instead of its entries.
func (b *shardBuf) readSorted(resPath string, jsonl bool) (bool, error) {
	list := b.list
	lines := b.lines[:0]
	var prev []byte
	for off := 0; off < len(list); {
		end := len(list)
		if nl := bytes.IndexByte(list[off:], '\n'); nl >= 0 {
			end = off + nl
		}
		if end > off {
			if cur := list[off:end]; pathAfter(prev, cur) {
				prev = cur
				lines = append(lines, listLine{off, end})
			} else {
				b.lines = lines
				return false, nil
			}
		}
		off = end + 1
	}
	b.lines = lines
	n := len(lines)
	if cap(b.finals) < n {
		b.finals = make([]finalLine, n)
	}
	finals := b.finals[:n]
	clear(finals)

	s := &b.shard
	data := b.data
	next := 0 // the input after the last result's
	for lineNo, off := 1, 0; ; lineNo++ {
		line, m := nextLine(data, off)
		if m == 0 {
			break
		}
		lineOff := off
		off += m
		if len(line) == 0 {
			continue
		}
		var li lineInfo
		if err := parseResult(line, &li, jsonl); err != nil {
			return true, corruptLine(resPath, lineNo, err)
		}
		s.addTime(li.t)
		k := next
		if k >= n || string(list[lines[k].start:lines[k].end]) != li.path {
			if k = searchList(list, lines, li.path); k < 0 {
				continue // not an input of this shard
			}
		}
		next = k + 1
		f := &finals[k]
		if f.emitted && f.ok && !li.ok {
			continue // a failure after an ok does not undo it
		}
		f.lineInfo, f.line, f.off, f.n, f.emitted = li, line, lineOff, 0, true
		if len(line) == m-1 {
			f.n = m
		}
	}

	st := &s.Status
	for k := range finals {
		f := &finals[k]
		st.Inputs++
		switch {
		case !f.emitted:
			st.Pending++
			e := Entry{Path: viewString(list[lines[k].start:lines[k].end])}
			if !jsonl {
				s.Entries = append(s.Entries, e)
				continue
			}
			start := len(s.Out)
			var err error
			if s.Out, err = appendJSONL(s.Out, &e); err != nil {
				return true, err
			}
			s.spans = extend(s.spans, false, start, len(s.Out))
			continue
		case f.ok:
			st.OK++
		default:
			st.Failed++
		}
		switch {
		case jsonl && f.n > 0:
			s.spans = extend(s.spans, true, f.off, f.off+f.n)
		case jsonl:
			start := len(s.Out)
			s.Out = append(append(s.Out, f.line...), '\n')
			s.spans = extend(s.spans, false, start, len(s.Out))
		default:
			s.Entries = append(s.Entries, Entry{Path: f.path, Found: true, OK: f.ok, Stage: f.stage, T: f.t, Line: f.line, off: f.off, n: f.n})
		}
	}
	return true, nil
}

// searchList finds path among the sorted lines of list: its index, or -1.
func searchList(list []byte, lines []listLine, path string) int {
	p := []byte(path) // no copy: the conversion does not escape
	lo, hi := 0, len(lines)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		switch c := comparePaths(list[lines[mid].start:lines[mid].end], p); {
		case c == 0:
			return mid
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return -1
}

// comparePaths orders paths as the scan lists them: bytewise, except that '/'
// sorts before every other byte (a directory's entries come before the names that
// extend the directory's name: "a/b" before "a-c"). It is a strict total order
// (0 only for equal paths): -1 when a sorts first, +1 when b does.
func comparePaths(a, b []byte) int {
	i, n := 0, min(len(a), len(b))
	for ; i+8 <= n; i += 8 {
		if x := binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:]); x != 0 {
			i += bits.TrailingZeros64(x) / 8
			break
		}
	}
	for i < n && a[i] == b[i] {
		i++
	}
	if i == n {
		return cmpInt(len(a), len(b))
	}
	return cmpInt(scanKey(a[i]), scanKey(b[i]))
}

// scanKey places byte c in the scan's order: '/' first, then every byte in order.
func scanKey(c byte) int {
	if c == '/' {
		return 0
	}
	return int(c) + 1
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
