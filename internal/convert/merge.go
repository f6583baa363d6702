package convert

import (
	"archive/tar"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/scivision-hpc/scv-hpc/internal/squashfs"
	"github.com/scivision-hpc/scv-hpc/internal/tarsafe"
)

// merger applies layer headers, lowest layer first, to a tree: the first
// pass of a streaming conversion. It follows flattener (flatten.go) rule for
// rule: whiteouts, opaque directories (hiding lower layers only), hard links,
// confinement of every name to the root; what a layer cannot do (a ".." above
// the root, a hard link to a directory) fails the conversion the same way.
type merger struct {
	t       *tree
	log     zerolog.Logger
	layer   int
	touched map[string]bool
	// lastFile is the regular file the last applied entry made, else nil.
	lastFile *inode
	entries  int
	skipped  int
}

func newMerger(log zerolog.Logger) *merger {
	return &merger{t: newTree(), log: log}
}

// startLayer begins layer i (0 = lowest).
func (m *merger) startLayer(i int) {
	m.layer = i
	m.touched = map[string]bool{}
}

// apply applies header hdr, the index-th header of the current layer.
func (m *merger) apply(hdr *tar.Header, index int) error {
	m.lastFile = nil
	if err := m.applyEntry(hdr, index); err != nil {
		return fmt.Errorf("entry %s: %w", tarsafe.Quote(hdr.Name), err)
	}
	return nil
}

func (m *merger) applyEntry(hdr *tar.Header, index int) error {
	rel, err := cleanEntryName(hdr.Name)
	if err != nil {
		return err
	}
	m.entries++
	if err := checkHeader(rel, hdr); err != nil {
		return err
	}
	base := path.Base(rel)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return m.whiteout(rel, base)
	}
	m.touch(rel)
	mode := hdr.Mode & 0o7777
	if rel == "" {
		if hdr.Typeflag == tar.TypeDir {
			m.t.root.mode, m.t.root.uid, m.t.root.gid = mode, hdr.Uid, hdr.Gid
		}
		return nil
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		res, parent, err := m.t.prepareEntry(rel, true)
		if err != nil {
			return err
		}
		name := path.Base(res)
		d, ok := parent.children[name]
		if !ok {
			d = newDir(mode, hdr.Uid, hdr.Gid)
			parent.children[name] = d
		}
		d.mode, d.uid, d.gid = mode, hdr.Uid, hdr.Gid
		return nil
	//lint:ignore SA1019 old tar writers still write TypeRegA; taken as a regular file
	case tar.TypeReg, tar.TypeRegA:
		n := &inode{typ: tar.TypeReg, mode: mode, uid: hdr.Uid, gid: hdr.Gid, size: hdr.Size, layer: m.layer, index: index}
		res, err := m.t.put(rel, n)
		if err != nil {
			return err
		}
		n.origin, m.lastFile = res, n
		return nil
	case tar.TypeSymlink:
		_, err := m.t.put(rel, &inode{typ: tar.TypeSymlink, mode: 0o777, uid: hdr.Uid, gid: hdr.Gid,
			link: hdr.Linkname, layer: -1})
		return err
	case tar.TypeLink:
		return m.hardLink(rel, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		_, err := m.t.put(rel, &inode{typ: hdr.Typeflag, mode: mode, uid: hdr.Uid, gid: hdr.Gid,
			major: hdr.Devmajor, minor: hdr.Devminor, layer: -1})
		return err
	case tar.TypeXGlobalHeader, tar.TypeXHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
		return nil
	default:
		m.skipped++
		m.log.Warn().Str("entry", hdr.Name).Int("type", int(hdr.Typeflag)).Msg("skipping layer entry of unsupported type")
		return nil
	}
}

func (m *merger) hardLink(rel string, hdr *tar.Header) error {
	target, err := cleanEntryName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hard link target: %w", err)
	}
	tres, err := m.t.resolveParent(target)
	if err != nil {
		return err
	}
	n, err := m.t.lookup(tres)
	if err != nil {
		return fmt.Errorf("hard link to %q: %w", hdr.Linkname, &fs.PathError{Op: "lstat", Path: "/" + tres, Err: err})
	}
	if n.isDir() {
		return fmt.Errorf("hard link to directory %q is not allowed", hdr.Linkname)
	}
	if res, err := m.t.resolveParent(rel); err == nil && res == tres {
		return nil // a link to itself: the entry is already there
	}
	res, parent, err := m.t.prepareEntry(rel, false)
	if err != nil {
		return err
	}
	// Making way for the link may have removed its target (a parent of it).
	if again, err := m.t.lookup(tres); err != nil || again != n {
		return fmt.Errorf("hard link to %q: %w", hdr.Linkname, &fs.PathError{Op: "link", Path: "/" + tres, Err: syscall.ENOENT})
	}
	parent.children[path.Base(res)] = n
	return nil
}

// whiteout is flattener.whiteout over the tree.
func (m *merger) whiteout(rel, base string) error {
	dir := parentRel(rel)
	if base == whiteoutOpaque {
		res, err := m.t.resolve(dir, true)
		if err != nil {
			return err
		}
		m.touch(dir)
		return m.clearLower(res, dir)
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		m.skipped++
		m.log.Warn().Str("entry", rel).Msg("skipping malformed whiteout")
		return nil
	}
	target := name
	if dir != "" {
		target = dir + "/" + name
	}
	res, err := m.t.resolveParent(target)
	if err != nil {
		return err
	}
	// Under a file, the tree path's removal fails (ENOTDIR); a missing parent
	// is nothing to remove.
	if _, err := m.t.lookup(res); err == syscall.ENOTDIR {
		return &fs.PathError{Op: "unlinkat", Path: "/" + res, Err: err}
	}
	m.t.remove(res)
	return nil
}

// clearLower removes from the directory res (named rel in this layer) every
// child the current layer did not write.
func (m *merger) clearLower(res, rel string) error {
	d, err := m.t.lookup(res)
	if err == syscall.ENOENT {
		return nil
	}
	if err != nil {
		return &fs.PathError{Op: "readdir", Path: "/" + res, Err: err}
	}
	if !d.isDir() {
		return &fs.PathError{Op: "readdir", Path: "/" + res, Err: syscall.ENOTDIR}
	}
	for name, child := range d.children {
		childRel := path.Join(rel, name)
		if !m.touched[childRel] {
			delete(d.children, name)
			continue
		}
		if child.isDir() {
			if err := m.clearLower(path.Join(res, name), childRel); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *merger) touch(rel string) {
	for rel != "" && !m.touched[rel] {
		m.touched[rel] = true
		rel = parentRel(rel)
	}
}

// checkHeader refuses, before it changes the tree, an entry that no image
// can hold (squashfs.CheckName and CheckEntry: names longer than NAME_MAX or
// PATH_MAX, owners beyond 32 bits, symlink targets empty or longer than
// PATH_MAX, device numbers beyond 12:20 bits). What mksquashfs and tar2sqfs
// would do with it is write an image the kernel refuses or that holds other
// values than the layer's; a container engine fails on it too. A whiteout is
// held to the limits of the name it removes, a hard link to those of its target
// (a longer name would only cost its resolution); hard links take their
// target's attributes; entries of other types are skipped. The merge and the
// unpacking fallback both call it, first thing for every entry.
func checkHeader(rel string, hdr *tar.Header) error {
	if base := path.Base(rel); strings.HasPrefix(base, whiteoutPrefix) {
		return squashfs.CheckName(path.Join(parentRel(rel), strings.TrimPrefix(base, whiteoutPrefix)))
	}
	typ := hdr.Typeflag
	switch typ {
	//lint:ignore SA1019 old tar writers still write TypeRegA; taken as a regular file
	case tar.TypeRegA:
		typ = tar.TypeReg
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo, tar.TypeLink:
	default:
		return nil
	}
	if rel == "" && typ != tar.TypeDir {
		return nil // ignored: the root is a directory
	}
	if err := squashfs.CheckName(rel); err != nil {
		return err
	}
	if typ == tar.TypeLink {
		target, err := cleanEntryName(hdr.Linkname)
		if err == nil {
			err = squashfs.CheckName(target)
		}
		if err != nil {
			return fmt.Errorf("hard link target: %w", err)
		}
		return nil
	}
	return squashfs.CheckEntry(squashfs.Entry{Type: typ, UID: hdr.Uid, GID: hdr.Gid,
		Target: hdr.Linkname, Major: hdr.Devmajor, Minor: hdr.Devminor})
}
