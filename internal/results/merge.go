package results

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/scivision-hpc/scv-hpc/internal/job"
)

// finalLine is the final result line of one path while a shard is merged.
type finalLine struct {
	lineInfo
	line []byte
	// off and n are the line's place in the result file, its '\n' included; n is 0
	// when line is not those bytes less the '\n' (it was trimmed).
	off, n  int
	emitted bool
}

// shardBuf holds what reading one shard needs; Walk reuses it for later shards, so
// that a million results cost a few buffers, not a million allocations.
type shardBuf struct {
	data, list []byte
	finals     []finalLine
	lines      []listLine
	pendings   []string
	index      pathIndex
	shard      Shard
}

var bufPool = sync.Pool{New: func() any { return new(shardBuf) }}

// find looks path (of hash h) up in the index: the value stored for it, or 0 and
// the free slot where it goes.
func (b *shardBuf) find(h uint64, path string) (pos int, v int32) {
	slots := b.index.slots
	mask := uint64(len(slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := slots[i]
		if s.v == 0 {
			return int(i), 0
		}
		if s.h != h {
			continue
		}
		if s.v > 0 && b.finals[s.v-1].path == path || s.v < 0 && b.pendings[-s.v-1] == path {
			return int(i), s.v
		}
	}
}

// readFile reads the file at path into buf (grown as needed): up to the size it has
// when opened, so lines appended meanwhile are left for the next read.
func readFile(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return buf[:0], err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return buf[:0], err
	}
	n := int(fi.Size())
	if cap(buf) < n {
		buf = make([]byte, n, n+n/8)
	}
	buf = buf[:n]
	m, err := io.ReadFull(f, buf)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = nil // the file shrank (a torn tail cut by a writer): what was read stands
	}
	return buf[:m], err
}

// read reads shard i's result file and list into the shard's entries.
func (b *shardBuf) read(jobDir string, i int, jsonl bool) (*Shard, error) {
	resPath := job.ResultFile(jobDir, i)
	var err error
	b.data, err = readFile(resPath, b.data)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("shard %d: read results: %w", i, err)
	}
	b.list, err = readFile(job.ShardFile(jobDir, i), b.list)
	if err != nil {
		return nil, fmt.Errorf("read shard %d: %w", i, err)
	}
	b.shard = Shard{Index: i, Entries: b.shard.Entries[:0], Out: b.shard.Out[:0], data: b.data, spans: b.shard.spans[:0], asm: b.shard.asm[:0]}
	sorted := b.readInOrder(jsonl)
	if !sorted {
		b.shard = Shard{Index: i, Entries: b.shard.Entries[:0], Out: b.shard.Out[:0], data: b.data, spans: b.shard.spans[:0], asm: b.shard.asm[:0]}
		if sorted, err = b.readSorted(resPath, jsonl); err != nil {
			return nil, err
		}
	}
	if !sorted {
		if err := b.merge(resPath); err != nil {
			return nil, err
		}
	}
	s := &b.shard
	s.Status.Index = i
	s.Status.State = state(s.Status)
	return s, nil
}

// nextLine cuts the next complete line off data at *off: the line trimmed of white
// space, and how many bytes of data it took, '\n' included; n is 0 at the end (no
// '\n' left: nothing, or a torn last line, which is ignored). A blank line gives an
// empty line.
func nextLine(data []byte, off int) (line []byte, n int) {
	nl := bytes.IndexByte(data[off:], '\n')
	if nl < 0 {
		return nil, 0
	}
	line = data[off : off+nl]
	if len(line) == 0 || line[0] != '{' || line[len(line)-1] != '}' {
		line = bytes.TrimSpace(line)
	}
	return line, nl + 1
}

// cutList cuts the next line off a shard list: lines end at '\n', the last one may
// not; rest is nil at the end.
func cutList(list []byte) (line, rest []byte) {
	if nl := bytes.IndexByte(list, '\n'); nl >= 0 {
		return list[:nl], list[nl+1:]
	}
	return list, nil
}

// addTime widens the shard's First..Last to t (0: not recorded).
func (s *Shard) addTime(t int64) {
	if t > 0 {
		if s.First == 0 || t < s.First {
			s.First = t
		}
		s.Last = max(s.Last, t)
	}
}

// readInOrder is read's fastest path, for a shard run by one worker: results in
// list order, one line each, then the inputs without one, and a list that sorts
// strictly upwards (as the scan writes it, see comparePaths: no path is listed
// twice). Then every result line is its path's final one, and nothing needs to be
// looked up. It reports false, leaving the shard to readSorted, at the first line
// that is otherwise (out of order, a second result for a path, a path not listed,
// a corrupt line): that shard's lines up to there are read twice.
// With jsonl, the lines go to the shard's output spans instead of its entries.
func (b *shardBuf) readInOrder(jsonl bool) bool {
	s := &b.shard
	st := &s.Status
	data, list := b.data, b.list
	var prev []byte
	for off := 0; ; {
		line, n := nextLine(data, off)
		if n == 0 {
			break
		}
		lineOff := off
		off += n
		if len(line) == 0 {
			continue
		}
		var li lineInfo
		if parseResult(line, &li, jsonl) != nil {
			return false
		}
		var rel []byte
		if p := li.path; len(list) > len(p) && list[len(p)] == '\n' && string(list[:len(p)]) == p {
			rel, list = list[:len(p)], list[len(p)+1:] // the next list line is the path
		} else {
			for len(rel) == 0 && list != nil {
				rel, list = cutList(list)
			}
			if len(rel) == 0 || li.path != viewString(rel) {
				return false
			}
		}
		if !pathAfter(prev, rel) {
			return false
		}
		prev = rel
		s.addTime(li.t)
		switch {
		case jsonl && len(line) == n-1:
			s.spans = extend(s.spans, true, lineOff, off)
		case jsonl:
			start := len(s.Out)
			s.Out = append(append(s.Out, line...), '\n')
			s.spans = extend(s.spans, false, start, len(s.Out))
		default:
			e := Entry{Path: li.path, Found: true, OK: li.ok, Stage: li.stage, T: li.t, Line: line, off: lineOff}
			if len(line) == n-1 {
				e.n = n
			}
			s.Entries = append(s.Entries, e)
		}
		if li.ok {
			st.OK++
		} else {
			st.Failed++
		}
	}
	for list != nil {
		var rel []byte
		if rel, list = cutList(list); len(rel) == 0 {
			continue
		}
		if !pathAfter(prev, rel) {
			return false
		}
		prev = rel
		s.Entries = append(s.Entries, Entry{Path: viewString(rel)})
		st.Pending++
	}
	st.Inputs = st.OK + st.Failed + st.Pending
	return true
}

// pathAfter reports whether cur sorts strictly after prev in scan order (see
// comparePaths); nil prev: cur is the first.
func pathAfter(prev, cur []byte) bool {
	return prev == nil || comparePaths(cur, prev) > 0
}

// merge is read for any shard: per path the final line (see Final) through the
// index, then the list, each path once.
func (b *shardBuf) merge(resPath string) error {
	s := &b.shard
	data := b.data
	b.finals, b.pendings = b.finals[:0], b.pendings[:0]
	b.index.reset(len(data) / 64)
	for lineNo, off := 1, 0; ; lineNo++ {
		line, n := nextLine(data, off)
		if n == 0 {
			break
		}
		lineOff := off
		off += n
		if len(line) == 0 {
			continue
		}
		var li lineInfo
		if err := parseLine(line, &li); err != nil {
			return corruptLine(resPath, lineNo, err)
		}
		s.addTime(li.t)
		h := hashPath(li.path)
		pos, v := b.find(h, li.path)
		var f *finalLine
		switch {
		case v == 0:
			b.finals = append(b.finals, finalLine{})
			b.index.insert(pos, h, int32(len(b.finals)))
			f = &b.finals[len(b.finals)-1]
		case b.finals[v-1].ok && !li.ok:
			continue
		default:
			f = &b.finals[v-1]
		}
		f.path, f.ok, f.stage, f.t = li.path, li.ok, li.stage, li.t
		f.line, f.off, f.n = line, lineOff, 0
		if len(line) == n-1 {
			f.n = n
		}
	}

	list, finals := b.list, b.finals
	st := &s.Status
	next := 0 // the result that comes after the last one listed, in file order
	for list != nil {
		var line []byte
		if line, list = cutList(list); len(line) == 0 {
			continue
		}
		rel := viewString(line)
		k := next
		if k >= len(finals) || finals[k].path != rel {
			h := hashPath(rel)
			pos, v := b.find(h, rel)
			switch {
			case v < 0:
				continue // listed twice, pending
			case v == 0:
				b.pendings = append(b.pendings, rel)
				b.index.insert(pos, h, -int32(len(b.pendings)))
				st.Inputs++
				st.Pending++
				s.Entries = append(s.Entries, Entry{Path: rel})
				continue
			}
			k = int(v - 1)
		}
		next = k + 1
		f := &finals[k]
		if f.emitted {
			continue
		}
		f.emitted = true
		st.Inputs++
		if f.ok {
			st.OK++
		} else {
			st.Failed++
		}
		s.Entries = append(s.Entries, Entry{Path: rel, Found: true, OK: f.ok, Stage: f.stage, T: f.t, Line: f.line, off: f.off, n: f.n})
	}
	return nil
}
