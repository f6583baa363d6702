package squashfs

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"runtime"
	"slices"
	"strings"

	"github.com/scivision-hpc/scv-hpc/internal/tarsafe"
)

// DefaultBlockSize is the data block size of mksquashfs and tar2sqfs.
const DefaultBlockSize = 128 << 10

// Options tune a Writer. The zero value writes gzip level 3 blocks of
// 128 KiB with one compressor per core.
type Options struct {
	// Compression is "gzip" (the default) or "zstd".
	Compression string
	// Level is the compression level: 1–9 for gzip (default 3), 1–22 for
	// zstd (default 3).
	Level int
	// BlockSize is a power of two from 4 KiB to 1 MiB; default 128 KiB.
	BlockSize int
	// Workers is the number of compressing goroutines; default GOMAXPROCS.
	Workers int
}

// Entry describes one name of the tree. Type is a tar type flag:
// tar.TypeDir, TypeReg, TypeSymlink, TypeChar, TypeBlock or TypeFifo.
type Entry struct {
	Type         byte
	Mode         int64 // permission bits, set-id and sticky bits included
	UID, GID     int
	Data         *Data  // TypeReg: its content, from Writer.Data
	Target       string // TypeSymlink
	Major, Minor int64  // TypeChar, TypeBlock
}

// ErrExists is an Add of a name that is already in the tree (a directory
// added again only updates its attributes).
var ErrExists = errors.New("name already in the tree")

// ErrClosed is a call on a Writer that was closed or aborted.
var ErrClosed = errors.New("squashfs writer closed")

// Writer writes one squashfs image. Data, Add and Link may come in any
// order, except that a Data is written before an entry names it and a link
// target is added before the link; Close writes the tables. A Writer is not
// safe for concurrent use.
type Writer struct {
	f         io.WriterAt
	blockSize int
	blockLog  uint16
	compID    uint16
	newComp   func() compressor
	p         *pipeline
	fragBuf   []byte
	frags     []*fragEntry
	root      *node
	closed    bool
}

type node struct {
	e        Entry
	children map[string]*node // directories
	nlink    uint32           // names of a non-directory
	ino      uint32
	ref      uint64 // inode reference, once written
	written  bool
}

func (n *node) isDir() bool { return n.e.Type == tar.TypeDir }

// NewWriter starts an image at offset 0 of f, which must be empty or be
// truncated by the caller: the data blocks are written through f's Write as
// they are compressed, the superblock through WriteAt at Close.
func NewWriter(f interface {
	io.Writer
	io.WriterAt
}, o Options) (*Writer, error) {
	if o.Compression == "" {
		o.Compression = "gzip"
	}
	if o.Level == 0 {
		o.Level = map[string]int{"gzip": 3, "zstd": 3}[o.Compression]
	}
	if o.BlockSize == 0 {
		o.BlockSize = DefaultBlockSize
	}
	if o.BlockSize < 4096 || o.BlockSize > 1<<20 || o.BlockSize&(o.BlockSize-1) != 0 {
		return nil, fmt.Errorf("squashfs block size %d: want a power of two from 4096 to 1048576", o.BlockSize)
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	id, newComp, err := newCompressorFunc(o.Compression, o.Level)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(make([]byte, superblockSize)); err != nil {
		return nil, fmt.Errorf("write squashfs superblock: %w", err)
	}
	w := &Writer{
		f: f, blockSize: o.BlockSize, blockLog: uint16(bits.TrailingZeros(uint(o.BlockSize))),
		compID: id, newComp: newComp,
		root: &node{e: Entry{Type: tar.TypeDir, Mode: 0o755}, children: map[string]*node{}},
	}
	w.p = newPipeline(f, superblockSize, o.BlockSize, o.Workers, newComp)
	return w, nil
}

// Data writes size bytes read from r as the content of a regular file, to
// be named by one or more entries (Add with Entry.Data, or Link). The full
// blocks are compressed in the background; the tail goes into a fragment
// block shared with other files' tails.
func (w *Writer) Data(r io.Reader, size int64) (*Data, error) {
	if w.closed {
		return nil, ErrClosed
	}
	if size < 0 {
		return nil, fmt.Errorf("file size %d", size)
	}
	bs := int64(w.blockSize)
	// The block list grows as blocks are written: a size that the stream
	// does not hold allocates nothing.
	d := &Data{size: size, frag: invalidFrag}
	for range size / bs {
		buf := w.p.getBuf()[:bs]
		if _, err := io.ReadFull(r, buf); err != nil {
			w.p.putBuf(buf)
			return nil, fmt.Errorf("read file content: %w", noEOF(err))
		}
		if err := w.p.submit(&block{src: buf, file: d}); err != nil {
			return nil, fmt.Errorf("write squashfs: %w", err)
		}
	}
	if tail := int(size % bs); tail > 0 {
		if len(w.fragBuf)+tail > w.blockSize {
			if err := w.flushFragment(); err != nil {
				return nil, err
			}
		}
		if w.fragBuf == nil {
			w.fragBuf = w.p.getBuf()
		}
		off := len(w.fragBuf)
		w.fragBuf = w.fragBuf[:off+tail]
		if _, err := io.ReadFull(r, w.fragBuf[off:]); err != nil {
			w.fragBuf = w.fragBuf[:off]
			return nil, fmt.Errorf("read file content: %w", noEOF(err))
		}
		d.frag, d.fragOff = uint32(len(w.frags)), uint32(off)
	}
	return d, nil
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (w *Writer) flushFragment() error {
	if len(w.fragBuf) == 0 {
		return nil
	}
	e := &fragEntry{}
	w.frags = append(w.frags, e)
	b := &block{src: w.fragBuf, frag: e}
	w.fragBuf = nil
	if err := w.p.submit(b); err != nil {
		return fmt.Errorf("write squashfs: %w", err)
	}
	return nil
}

// Add puts e at name, a slash-separated path relative to the root ("" or
// "." is the root itself, which must be a directory). Missing parent
// directories are made with mode 0755, owned by 0:0, until an Add of their
// own sets their attributes. A name or an entry beyond the format's limits
// (CheckName, CheckEntry) is an ErrLimit error.
func (w *Writer) Add(name string, e Entry) error {
	if w.closed {
		return ErrClosed
	}
	switch e.Type {
	case tar.TypeDir, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	case tar.TypeReg:
		if e.Data == nil {
			return fmt.Errorf("add %s: a regular file without Data", tarsafe.Quote(name))
		}
	default:
		return fmt.Errorf("add %s: unsupported type %q", tarsafe.Quote(name), e.Type)
	}
	if err := CheckEntry(e); err != nil {
		return fmt.Errorf("add %s: %w", tarsafe.Quote(name), err)
	}
	parent, base, err := w.parent(name)
	if err != nil {
		return err
	}
	if parent == nil { // the root
		if e.Type != tar.TypeDir {
			return fmt.Errorf("add %s: the root must be a directory", tarsafe.Quote(name))
		}
		w.root.e = Entry{Type: tar.TypeDir, Mode: e.Mode, UID: e.UID, GID: e.GID}
		return nil
	}
	if old, ok := parent.children[base]; ok {
		if old.isDir() && e.Type == tar.TypeDir {
			old.e = Entry{Type: tar.TypeDir, Mode: e.Mode, UID: e.UID, GID: e.GID}
			return nil
		}
		return fmt.Errorf("add %s: %w", tarsafe.Quote(name), ErrExists)
	}
	n := &node{e: e, nlink: 1}
	if e.Type == tar.TypeDir {
		n.children = map[string]*node{}
		n.e = Entry{Type: tar.TypeDir, Mode: e.Mode, UID: e.UID, GID: e.GID}
	}
	parent.children[base] = n
	return nil
}

// Link adds name as another name (a hard link) of target, which must be in
// the tree and not be a directory.
func (w *Writer) Link(name, target string) error {
	if w.closed {
		return ErrClosed
	}
	tp, tb, err := w.parent(target)
	if err != nil {
		return err
	}
	var t *node
	if tp != nil {
		t = tp.children[tb]
	}
	if t == nil || t.isDir() {
		return fmt.Errorf("link %s to %s: the target is not a file in the tree", tarsafe.Quote(name), tarsafe.Quote(target))
	}
	parent, base, err := w.parent(name)
	if err != nil {
		return err
	}
	if parent == nil {
		return fmt.Errorf("link %s: the root cannot be a link", tarsafe.Quote(name))
	}
	if _, ok := parent.children[base]; ok {
		return fmt.Errorf("link %s: %w", tarsafe.Quote(name), ErrExists)
	}
	t.nlink++
	parent.children[base] = t
	return nil
}

// parent returns the directory that holds name, made as needed, and name's
// last element; nil for the root.
func (w *Writer) parent(name string) (*node, string, error) {
	clean, err := cleanName(name)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", tarsafe.Quote(name), err)
	}
	if clean == "" {
		return nil, "", nil
	}
	elems := strings.Split(clean, "/")
	dir := w.root
	for i, el := range elems {
		if i == len(elems)-1 {
			return dir, el, nil
		}
		next, ok := dir.children[el]
		if !ok {
			next = &node{e: Entry{Type: tar.TypeDir, Mode: 0o755}, children: map[string]*node{}}
			dir.children[el] = next
		} else if !next.isDir() {
			return nil, "", fmt.Errorf("name %s: /%s is not a directory", tarsafe.Quote(name), strings.Join(elems[:i+1], "/"))
		}
		dir = next
	}
	panic("unreachable")
}

// Abort stops the background compression and writes nothing more; the
// image is incomplete. Close after Abort returns ErrClosed.
func (w *Writer) Abort() {
	if w.closed {
		return
	}
	w.closed = true
	w.p.putBuf(w.fragBuf)
	w.fragBuf = nil
	_ = w.p.close()
}

// AddTar adds every entry of the tar stream r: regular files with their
// content, hard links (to names earlier in the stream or already added),
// directories, symlinks, devices and FIFOs; "./" sets the root's
// attributes. Other entry types and extended headers are skipped.
func (w *Writer) AddTar(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		if err := tarsafe.Check(hdr); err != nil {
			return fmt.Errorf("tar entry %w", err)
		}
		e := Entry{Type: hdr.Typeflag, Mode: hdr.Mode & 0o7777, UID: hdr.Uid, GID: hdr.Gid,
			Target: hdr.Linkname, Major: hdr.Devmajor, Minor: hdr.Devminor}
		switch hdr.Typeflag {
		//lint:ignore SA1019 old tar writers still write TypeRegA
		case tar.TypeReg, tar.TypeRegA:
			e.Type = tar.TypeReg
			if e.Data, err = w.Data(tr, hdr.Size); err != nil {
				return fmt.Errorf("tar entry %s: %w", tarsafe.Quote(hdr.Name), err)
			}
		case tar.TypeLink:
			if err := w.Link(hdr.Name, hdr.Linkname); err != nil {
				return fmt.Errorf("tar entry %s: %w", tarsafe.Quote(hdr.Name), err)
			}
			continue
		case tar.TypeSymlink:
			e.Mode = 0o777
		case tar.TypeDir, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		default:
			continue
		}
		if err := w.Add(hdr.Name, e); err != nil {
			return fmt.Errorf("tar entry %s: %w", tarsafe.Quote(hdr.Name), err)
		}
	}
}

// sortedNames returns a directory's entry names in byte order, as the
// kernel's lookup and mksquashfs expect.
func sortedNames(n *node) []string {
	names := make([]string, 0, len(n.children))
	for name := range n.children {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
