// Package sharding walks a dataset and splits its inputs into shard files, the unit of
// work of one runner (one Slurm array task). The walk streams: it reads one directory
// at a time in sorted order and keeps nothing per file beyond the lines of the shard
// being written, so memory stays flat from ten thousand to millions of files.
package sharding

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// DefaultInclude are the globs a scan keeps when ScanOptions.Include is empty.
var DefaultInclude = []string{"*.png", "*.jpg", "*.jpeg", "*.tif", "*.tiff", "*.bmp", "*.gif", "*.webp", "*.npy"}

// ErrBadInclude is returned for an --include glob that filepath.Match cannot parse.
var ErrBadInclude = errors.New("bad include glob")

// ErrNotDir is returned by Scan for a data root that is not a directory.
var ErrNotDir = errors.New("not a directory")

// ScanOptions tune Scan. The zero value keeps the DefaultInclude image types.
type ScanOptions struct {
	// Include are globs matched against the base name, case-insensitively
	// (default DefaultInclude).
	Include []string
	// Log receives a warning per skipped entry when OnSkip is nil (the first
	// twenty, then one line saying there are more).
	Log zerolog.Logger
	// OnSkip, if set, is called for every entry that matched Include (or every
	// directory) but was left out: a symlink out of the root, a broken link, a link
	// loop, an unreadable file or directory, a special file, or a name that cannot be
	// written one per line. Hidden entries (".x") are left out without a report.
	OnSkip func(rel, reason string)
	// NoStat trusts the directory entry's type and does not stat regular files: sizes
	// are reported as 0 and unreadable files are not detected here (the model then
	// fails on them, and the runner records that input as failed). It makes a scan of
	// millions of files several times faster, since a scan is otherwise one stat per
	// file ('--fast-scan').
	// Balanced plans (Plan.Shards) need sizes and ignore it.
	NoStat bool
}

// ScanStats counts what a scan saw.
type ScanStats struct {
	Inputs  int64 // files passed to the callback
	Bytes   int64 // their total size
	Skipped int64 // entries reported through OnSkip
}

// matcher is a compiled Include list; "*.ext" globs are checked as suffixes, the
// common case, without allocating.
type matcher struct {
	suffixes []string // lower-case ".ext"
	globs    []string // lower-case general globs
}

func newMatcher(include []string) (*matcher, error) {
	if len(include) == 0 {
		include = DefaultInclude
	}
	m := &matcher{}
	for _, g := range include {
		lg := strings.ToLower(strings.TrimSpace(g))
		if lg == "" {
			continue
		}
		if _, err := filepath.Match(lg, ""); err != nil || strings.Contains(lg, "/") {
			return nil, fmt.Errorf("%w %q: globs match base names such as *.png", ErrBadInclude, g)
		}
		if rest, ok := strings.CutPrefix(lg, "*"); ok && !strings.ContainsAny(rest, `*?[\`) {
			m.suffixes = append(m.suffixes, rest)
			continue
		}
		m.globs = append(m.globs, lg)
	}
	if len(m.suffixes)+len(m.globs) == 0 {
		return nil, fmt.Errorf("%w: the include list is empty", ErrBadInclude)
	}
	return m, nil
}

func (m *matcher) match(name string) bool {
	for _, s := range m.suffixes {
		if len(name) >= len(s) && strings.EqualFold(name[len(name)-len(s):], s) {
			return true
		}
	}
	if len(m.globs) == 0 {
		return false
	}
	lname := strings.ToLower(name)
	for _, g := range m.globs {
		if ok, _ := filepath.Match(g, lname); ok {
			return true
		}
	}
	return false
}

// scanner is the state of one Scan.
type scanner struct {
	ctx      context.Context
	root     string // as given, cleaned
	rootReal string // symlinks resolved, for the containment check
	m        *matcher
	o        ScanOptions
	fn       func(rel string, size int64) error
	st       ScanStats
	n        int
}

// Scan walks root and calls fn for each regular file whose base name matches
// o.Include, with its path relative to root ('/'-separated) and its size. The order
// is stable: each directory's names are sorted bytewise and directories are entered
// where they sort. Symlinks to files inside root are followed (the size is the
// target's); everything that cannot be used is reported through o.OnSkip and
// counted, never followed silently. An error from fn stops the walk and is returned.
func Scan(ctx context.Context, root string, o ScanOptions, fn func(rel string, size int64) error) (ScanStats, error) {
	m, err := newMatcher(o.Include)
	if err != nil {
		return ScanStats{}, err
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return ScanStats{}, fmt.Errorf("data root %s: %w", root, err)
	}
	rootReal, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return ScanStats{}, fmt.Errorf("data root %s: %w", root, err)
	}
	if fi, err := os.Stat(rootReal); err != nil {
		return ScanStats{}, fmt.Errorf("data root %s: %w", root, err)
	} else if !fi.IsDir() {
		return ScanStats{}, fmt.Errorf("data root %s: %w", root, ErrNotDir)
	}
	s := &scanner{ctx: ctx, root: abs, rootReal: rootReal, m: m, o: o, fn: fn}
	f, err := os.Open(abs)
	if err != nil {
		return s.st, fmt.Errorf("scan %s: %w", abs, err)
	}
	err = s.dir("", f)
	return s.st, err
}

func (s *scanner) skip(rel, reason string) {
	s.st.Skipped++
	if s.o.OnSkip != nil {
		s.o.OnSkip(rel, reason)
		return
	}
	switch {
	case s.st.Skipped <= maxSkipLogs:
		s.o.Log.Warn().Str("path", rel).Str("reason", reason).Msg("input skipped")
	case s.st.Skipped == maxSkipLogs+1:
		s.o.Log.Warn().Msg("more inputs skipped; not listing each (the total is in the scan summary)")
	}
}

// maxSkipLogs is how many skipped entries a scan without OnSkip logs one by one.
const maxSkipLogs = 20

// badName says why a name cannot be recorded as one line of a shard file and one
// JSON string of a result, or "" if it can.
func badName(name string) string {
	if strings.ContainsAny(name, "\n\r") {
		return "name contains a line break; rename it to include it"
	}
	if !utf8.ValidString(name) {
		return "name is not valid UTF-8 and cannot be recorded in JSON results; rename it to include it"
	}
	return ""
}

// subdir opens the directory name inside the open directory parent, relative to it
// and without following a link, so a directory swapped for a symlink during the
// scan cannot lead it out of the root.
func subdir(parent *os.File, name, rel string) (*os.File, error) {
	fd, err := unix.Openat(int(parent.Fd()), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), rel), nil
}

// dir scans the open directory f, rel from the root ("" for the root); it closes f.
func (s *scanner) dir(rel string, f *os.File) error {
	defer f.Close()
	if err := s.ctx.Err(); err != nil {
		return fmt.Errorf("scan %s: %w", s.root, err)
	}
	prefix := ""
	if rel != "" {
		prefix = rel + "/"
	}
	ents, err := f.ReadDir(-1)
	if err != nil {
		if rel == "" {
			return fmt.Errorf("scan %s: %w", s.root, err)
		}
		s.skip(rel+"/", "cannot read directory: "+errText(err))
		return nil
	}
	slices.SortFunc(ents, func(a, b os.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	stats := s.statFiles(int(f.Fd()), ents)
	for i, e := range ents {
		ents[i] = nil // let the entry go as soon as it is handled
		name := e.Name()
		if name[0] == '.' {
			continue
		}
		typ := e.Type()
		if typ.IsDir() {
			if why := badName(name); why != "" {
				s.skip(prefix+name+"/", why)
				continue
			}
			sub, err := subdir(f, name, prefix+name)
			if err != nil {
				s.skip(prefix+name+"/", "cannot read directory: "+errText(err))
				continue
			}
			if err := s.dir(prefix+name, sub); err != nil {
				return err
			}
			continue
		}
		if !s.m.match(name) {
			if typ&os.ModeSymlink != 0 {
				s.dirLink(prefix + name)
			}
			continue
		}
		r := prefix + name
		if why := badName(name); why != "" {
			s.skip(r, why)
			continue
		}
		if err := s.file(r, typ, stats[i]); err != nil {
			return err
		}
	}
	return nil
}

// fileStat is what the stat of a regular file gave: its size, or why it is skipped.
type fileStat struct {
	size int64
	why  string
}

// keeps says whether the scan hands the entry on as a regular file (links, special
// files and directories are handled one by one).
func (s *scanner) keeps(e os.DirEntry) bool {
	name := e.Name()
	return name[0] != '.' && e.Type().IsRegular() && s.m.match(name) && badName(name) == ""
}

// statFiles stats the regular files of one directory that the scan keeps, on
// several threads for large directories: one stat per file is most of the time of
// a scan, and the calls are independent.
func (s *scanner) statFiles(dfd int, ents []os.DirEntry) []fileStat {
	out := make([]fileStat, len(ents))
	if s.o.NoStat {
		return out
	}
	idx := make([]int, 0, len(ents))
	for i, e := range ents {
		if s.keeps(e) {
			idx = append(idx, i)
		}
	}
	work := func(part []int) {
		for _, i := range part {
			out[i] = statAt(dfd, ents[i].Name())
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(idx)/256, 8)
	if workers < 2 {
		work(idx)
		return out
	}
	var wg sync.WaitGroup
	per := (len(idx) + workers - 1) / workers
	for lo := 0; lo < len(idx); lo += per {
		part := idx[lo:min(lo+per, len(idx))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(part)
		}()
	}
	wg.Wait()
	return out
}

func statAt(dfd int, name string) fileStat {
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fileStat{why: "cannot stat: " + errText(err)}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fileStat{why: "not a regular file"}
	}
	// World-readable files (nearly all) need no access check.
	if st.Mode&0o004 == 0 {
		if err := unix.Faccessat(dfd, name, unix.R_OK, 0); err != nil {
			return fileStat{why: "not readable: " + errText(err)}
		}
	}
	return fileStat{size: st.Size}
}

// file hands one entry that matched the include globs to fn, or reports it.
// fs is the regular file's stat from statFiles.
func (s *scanner) file(rel string, typ os.FileMode, fs fileStat) error {
	if s.n++; s.n&1023 == 0 {
		if err := s.ctx.Err(); err != nil {
			return fmt.Errorf("scan %s: %w", s.root, err)
		}
	}
	var size int64
	switch {
	case typ&os.ModeSymlink != 0:
		sz, why := s.link(rel)
		if why != "" {
			s.skip(rel, why)
			return nil
		}
		size = sz
	case typ.IsRegular():
		if fs.why != "" {
			s.skip(rel, fs.why)
			return nil
		}
		size = fs.size
	default:
		s.skip(rel, fmt.Sprintf("not a regular file (%s)", typeName(typ)))
		return nil
	}
	s.st.Inputs++
	s.st.Bytes += size
	return s.fn(rel, size)
}

// link resolves a symlink and returns the size of its target, or why it is skipped.
func (s *scanner) link(rel string) (int64, string) {
	full := s.root + "/" + rel
	target, err := filepath.EvalSymlinks(full)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, "broken symlink"
		}
		if errors.Is(err, unix.ELOOP) || strings.Contains(err.Error(), "too many links") {
			return 0, "symlink loop"
		}
		return 0, "cannot resolve symlink: " + errText(err)
	}
	if target != s.rootReal && !strings.HasPrefix(target, s.rootReal+"/") {
		return 0, "symlink points outside the data root (to " + target + "); copy or bind the file inside --data"
	}
	fi, err := os.Stat(target)
	if err != nil {
		return 0, "cannot stat symlink target: " + errText(err)
	}
	if !fi.Mode().IsRegular() {
		return 0, "symlink to a " + typeName(fi.Mode()) + ", not a file; only links to files are followed"
	}
	if err := unix.Access(target, unix.R_OK); err != nil {
		return 0, "symlink target not readable: " + errText(err)
	}
	return fi.Size(), ""
}

// dirLink reports a symlink whose name the include globs do not match when it
// leads to a directory: the scan never follows directory links (a loop or a way out
// of the root), and the files behind one must not vanish without a word.
func (s *scanner) dirLink(rel string) {
	fi, err := os.Stat(s.root + "/" + rel)
	if err != nil || !fi.IsDir() {
		return // a link to a file of another type, or broken: not an input either way
	}
	s.skip(rel+"/", "symlink to a directory, not followed (only links to files are); bind or copy that directory inside --data")
}

func typeName(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&os.ModeNamedPipe != 0:
		return "fifo"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeDevice != 0:
		return "device"
	case m&os.ModeSymlink != 0:
		return "symlink"
	}
	return "special file"
}

// errText is the OS error without the path that the caller already names.
func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
