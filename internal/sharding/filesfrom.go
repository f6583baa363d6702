package sharding

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrBadList is wrapped by ScanList for a list it cannot read (a CSV without a
// path column, a broken CSV record, a line longer than MaxListLine).
var ErrBadList = errors.New("bad input list")

// MaxListLine bounds one line of an input list.
const MaxListLine = 64 << 10

// ScanList is Scan over the inputs named in a list instead of a walk of root: r
// holds one path per line, or is a CSV file whose header has a "path" column
// (any case; the other columns are ignored). A list is CSV when its first line
// parses as a CSV header with such a column. Paths are relative to root, or
// absolute inside it. Entries that cannot be inputs are reported through
// o.OnSkip (or logged) and counted, as Scan does: paths outside root (also through
// a symlink), missing or unreadable files, anything not a regular file, names
// that cannot be written one per line, and duplicates (the first one is kept).
// Blank lines are skipped. Include globs do not apply: the list chooses. Inputs
// are handed to fn in list order. Memory holds 8 bytes per distinct path (for the
// duplicate check), not the list. name names the list in errors.
func ScanList(ctx context.Context, root string, r io.Reader, name string, o ScanOptions, fn func(rel string, size int64) error) (ScanStats, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return ScanStats{}, fmt.Errorf("data root %s: %w", root, err)
	}
	rootReal, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return ScanStats{}, fmt.Errorf("data root %s: %w", root, err)
	}
	s := &scanner{ctx: ctx, root: abs, rootReal: rootReal, o: o, fn: fn}
	l := &listScanner{s: s, seen: map[uint64]struct{}{}}
	br := bufio.NewReaderSize(r, 64<<10)
	line, err := readListLine(br)
	if err != nil && !errors.Is(err, io.EOF) {
		return s.st, fmt.Errorf("%w %s: %v", ErrBadList, name, err)
	}
	if col, ok := csvPathColumn(line); ok {
		return s.st, l.csv(br, name, col)
	}
	for lineNo := 2; ; lineNo++ {
		if perr := l.entry(strings.TrimSuffix(line, "\r")); perr != nil {
			return s.st, perr
		}
		if errors.Is(err, io.EOF) {
			return s.st, nil
		}
		line, err = readListLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			return s.st, fmt.Errorf("%w %s:%d: %v", ErrBadList, name, lineNo, err)
		}
	}
}

// WriteShardsFrom is WriteShards over the inputs listed in r (see ScanList)
// instead of a walk of root. A list is read once, so it cannot be balanced by
// bytes: a Plan with Shards set fails with ErrBadPlan.
func WriteShardsFrom(ctx context.Context, jobDir, root string, r io.Reader, name string, o ScanOptions, p Plan) (Summary, error) {
	if p.Shards > 0 {
		return Summary{}, fmt.Errorf("%w: an input list is read once and cannot be balanced by bytes; give a shard size instead of a shard count", ErrBadPlan)
	}
	return writeShards(ctx, jobDir, root, o, p, func(fn func(string, int64) error) (ScanStats, error) {
		return ScanList(ctx, root, r, name, o, fn)
	})
}

// readListLine reads one line without its '\n'; io.EOF comes with the last line
// (possibly empty).
func readListLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || len(line) > MaxListLine {
		return "", fmt.Errorf("a line is longer than %d KiB", MaxListLine>>10)
	}
	line = bytes.TrimSuffix(line, []byte{'\n'})
	return string(line), err
}

// csvPathColumn reports whether line is a CSV header with a "path" column, and
// which.
func csvPathColumn(line string) (int, bool) {
	rec, err := csv.NewReader(strings.NewReader(line)).Read()
	if err != nil {
		return 0, false
	}
	for i, f := range rec {
		if strings.EqualFold(strings.TrimSpace(f), "path") {
			return i, true
		}
	}
	return 0, false
}

type listScanner struct {
	s       *scanner
	seen    map[uint64]struct{} // FNV-1a of each input kept
	lastDir string              // the last directory found free of symlinks
}

func (l *listScanner) csv(br *bufio.Reader, name string, col int) error {
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w %s: %v", ErrBadList, name, err)
		}
		if col >= len(rec) {
			line, _ := cr.FieldPos(0)
			return fmt.Errorf("%w %s:%d: no path column in this record", ErrBadList, name, line+1)
		}
		if err := l.entry(rec[col]); err != nil {
			return err
		}
	}
}

// entry checks one listed path and hands it to the scan's callback, or reports it.
func (l *listScanner) entry(p string) error {
	s := l.s
	if strings.TrimSpace(p) == "" {
		return nil
	}
	if s.n++; s.n&1023 == 0 {
		if err := s.ctx.Err(); err != nil {
			return fmt.Errorf("read input list: %w", err)
		}
	}
	if why := badName(p); why != "" {
		s.skip(p, why)
		return nil
	}
	rel, why := l.relative(p)
	if why != "" {
		s.skip(p, why)
		return nil
	}
	h := fnv.New64a()
	h.Write([]byte(rel))
	sum := h.Sum64()
	if _, dup := l.seen[sum]; dup {
		s.skip(rel, "listed more than once; the first entry is kept")
		return nil
	}
	size, why := l.stat(rel)
	if why != "" {
		s.skip(rel, why)
		return nil
	}
	l.seen[sum] = struct{}{}
	s.st.Inputs++
	s.st.Bytes += size
	return s.fn(rel, size)
}

// relative turns a listed path into one relative to the root, '/'-separated.
func (l *listScanner) relative(p string) (string, string) {
	s := l.s
	if filepath.IsAbs(p) {
		c := filepath.Clean(p)
		var rel string
		switch {
		case strings.HasPrefix(c, s.root+"/"):
			rel = c[len(s.root)+1:]
		case strings.HasPrefix(c, s.rootReal+"/"):
			rel = c[len(s.rootReal)+1:]
		default:
			return "", "outside the data root; list paths under --data, relative to it or absolute"
		}
		return filepath.ToSlash(rel), ""
	}
	c := filepath.Clean(p)
	if !filepath.IsLocal(c) {
		return "", "outside the data root; list paths under --data, relative to it or absolute"
	}
	return filepath.ToSlash(c), ""
}

// stat checks that rel is a readable regular file inside the root, symlinks
// resolved, and returns its size.
func (l *listScanner) stat(rel string) (int64, string) {
	s := l.s
	full := s.root + "/" + rel
	fi, err := os.Lstat(full)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, "no such file under the data root"
		}
		return 0, "cannot stat: " + errText(err)
	}
	dir := ""
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		dir = rel[:i]
	}
	linked := fi.Mode()&os.ModeSymlink != 0
	if dir != "" && dir != l.lastDir {
		if parentLinks(s.root, rel) {
			linked = true
		} else {
			l.lastDir = dir
		}
	}
	if linked {
		target, err := filepath.EvalSymlinks(full)
		if err != nil {
			return 0, "broken symlink"
		}
		if !strings.HasPrefix(target, s.rootReal+"/") {
			return 0, "symlink points outside the data root (to " + target + "); copy or bind the file inside --data"
		}
		if fi, err = os.Stat(target); err != nil {
			return 0, "cannot stat symlink target: " + errText(err)
		}
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Sprintf("not a regular file (%s)", typeName(fi.Mode()))
	}
	if fi.Mode().Perm()&0o004 == 0 {
		if err := unix.Access(full, unix.R_OK); err != nil {
			return 0, "not readable: " + errText(err)
		}
	}
	return fi.Size(), ""
}

// parentLinks reports whether a directory on the way from root to rel is a symlink
// (then the file's real place must be checked).
func parentLinks(root, rel string) bool {
	dir := root
	parts := strings.Split(rel, "/")
	for _, p := range parts[:len(parts)-1] {
		dir += "/" + p
		fi, err := os.Lstat(dir)
		if err != nil || fi.Mode()&os.ModeSymlink != 0 {
			return true
		}
	}
	return false
}
