package results

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrCorrupt is wrapped by Read for a complete line that is not a valid record.
var ErrCorrupt = errors.New("corrupt result line")

// maxLine bounds one result line (a model's result object included).
const maxLine = 64 << 20

// Read calls fn for each record of the result file at path, in file order. A last
// line without '\n' is a write torn by a kill and is ignored; a complete line that
// is not a record (bad JSON, no path) is an error naming the file and line, wrapping
// ErrCorrupt. Blank lines are skipped.
func Read(path string, fn func(Record) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read results: %w", err)
	}
	defer f.Close()
	return read(f, path, fn)
}

func read(r io.Reader, path string, fn func(Record) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var long []byte // a line longer than the buffer, assembled
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadSlice('\n')
		for errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, line...)
			if len(long) > maxLine {
				return fmt.Errorf("%s:%d: %w: longer than %d MiB", path, lineNo, ErrCorrupt, maxLine>>20)
			}
			line, err = br.ReadSlice('\n')
		}
		if long != nil {
			long = append(long, line...)
			line, long = long, nil
		}
		if err == io.EOF {
			return nil // a last line without '\n' (or nothing): torn, ignored
		}
		if err != nil {
			return fmt.Errorf("read results %s: %w", path, err)
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		rec, err := parse(line)
		if err != nil {
			return corruptLine(path, lineNo, err)
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
}

func parse(line []byte) (Record, error) {
	var rec Record
	if err := json.Unmarshal(line, &rec); err != nil {
		return rec, err
	}
	if rec.Path == "" {
		return rec, errors.New("no path")
	}
	return rec, nil
}

// Final reads a result file into the final record of each path: the last ok:true
// line wins, else the last line. A missing file gives an empty map.
func Final(path string) (map[string]Record, error) {
	m := map[string]Record{}
	err := Read(path, func(r Record) error {
		if old, ok := m[r.Path]; ok && old.OK && !r.OK {
			return nil
		}
		m[r.Path] = r
		return nil
	})
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	return m, err
}

// Outcomes reads a result file into the final state of each path that has a result:
// true when its final record is ok (some line is ok:true, see Final), false when it
// failed. It keeps no result payloads. A missing file gives an empty map.
func Outcomes(path string) (map[string]bool, error) {
	m := map[string]bool{}
	err := Read(path, func(r Record) error {
		m[r.Path] = m[r.Path] || r.OK
		return nil
	})
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	return m, err
}

// Failed returns the paths whose final state is failed: what a retry of failed
// inputs runs again.
func Failed(path string) (map[string]bool, error) {
	out, err := Outcomes(path)
	if err != nil {
		return nil, err
	}
	m := map[string]bool{}
	for p, ok := range out {
		if !ok {
			m[p] = true
		}
	}
	return m, nil
}
