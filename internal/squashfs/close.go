package squashfs

import (
	"archive/tar"
	"fmt"
	"math"
	"path"
)

// Close writes the fragment blocks still open, the inode, directory,
// fragment and id tables, the padding and the superblock. The image is
// complete only when Close returns nil.
func (w *Writer) Close() error {
	if w.closed {
		return ErrClosed
	}
	if err := w.flushFragment(); err != nil {
		w.Abort()
		return err
	}
	w.closed = true
	if err := w.p.close(); err != nil {
		return fmt.Errorf("write squashfs: %w", err)
	}
	// One compressor for every metadata table: each block is compressed and
	// copied out before the next.
	meta := w.newComp()
	t := &tables{
		inodes: metaWriter{c: meta},
		dirs:   metaWriter{c: meta},
		ids:    map[uint32]uint16{},
	}
	count := t.number(w.root, 1) - 1
	if err := t.writeDir(w.root, count+1); err != nil {
		return err
	}
	t.inodes.flush()
	t.dirs.flush()

	sb := superblock{
		inodes: count, blockSize: uint32(w.blockSize), fragments: uint32(len(w.frags)),
		compression: w.compID, blockLog: w.blockLog, flags: flagNoXattrs,
		ids: uint16(len(t.idList)), rootInode: w.root.ref,
	}
	pos := w.p.pos
	out := make([]byte, 0, len(t.inodes.out)+len(t.dirs.out)+len(w.frags)*fragEntrySize+4096)
	sb.inodeTable = pos
	out = append(out, t.inodes.out...)
	sb.dirTable = pos + uint64(len(out))
	out = append(out, t.dirs.out...)
	var frags []byte
	for _, e := range w.frags {
		frags = le.AppendUint64(frags, e.start)
		frags = le.AppendUint32(frags, e.size)
		frags = le.AppendUint32(frags, 0)
	}
	out, sb.fragmentTable = appendTable(meta, out, pos, frags)
	var ids []byte
	for _, id := range t.idList {
		ids = le.AppendUint32(ids, id)
	}
	out, sb.idTable = appendTable(meta, out, pos, ids)
	sb.bytesUsed = pos + uint64(len(out))
	if pad := int(sb.bytesUsed % padTo); pad != 0 {
		out = append(out, make([]byte, padTo-pad)...)
	}
	if _, err := w.f.WriteAt(out, int64(pos)); err != nil {
		return fmt.Errorf("write squashfs tables: %w", err)
	}
	if _, err := w.f.WriteAt(sb.bytes(), 0); err != nil {
		return fmt.Errorf("write squashfs superblock: %w", err)
	}
	return nil
}

// appendTable appends entries as metadata blocks (compressed with c) followed by the table's
// index (the offset of each block, 8 bytes each) to out, which starts at
// file offset base; it returns the offset of the index, what the
// superblock points at.
func appendTable(c compressor, out []byte, base uint64, entries []byte) ([]byte, uint64) {
	m := metaWriter{c: c}
	var starts []uint64
	for off := 0; off < len(entries); off += metaBlockSize {
		starts = append(starts, base+uint64(len(out)+len(m.out)))
		m.write(entries[off:min(off+metaBlockSize, len(entries))])
		m.flush()
	}
	out = append(out, m.out...)
	at := base + uint64(len(out))
	for _, s := range starts {
		out = le.AppendUint64(out, s)
	}
	return out, at
}

// tables builds the inode and directory tables.
type tables struct {
	inodes, dirs metaWriter
	ids          map[uint32]uint16
	idList       []uint32
	buf          []byte
	dirPath      []string // the names from the root to the directory being written
}

// where is the path of name in the directory being written ("": the
// directory itself), for errors.
func (t *tables) where(name string) string {
	return "/" + path.Join(path.Join(t.dirPath...), name)
}

// number gives inode numbers from next on, children before their directory
// (the root last), in the order writeDir writes the inodes; it returns the
// next free number.
func (t *tables) number(dir *node, next uint32) uint32 {
	for _, name := range sortedNames(dir) {
		c := dir.children[name]
		switch {
		case c.isDir():
			next = t.number(c, next)
		case c.ino == 0:
			c.ino = next
			next++
		}
	}
	dir.ino = next
	return next + 1
}

func (t *tables) id(v int) (uint16, error) {
	if i, ok := t.ids[uint32(v)]; ok {
		return i, nil
	}
	if len(t.idList) >= MaxIDs {
		return 0, fmt.Errorf("more than %d distinct uids and gids: %w", MaxIDs, ErrLimit)
	}
	i := uint16(len(t.idList))
	t.ids[uint32(v)] = i
	t.idList = append(t.idList, uint32(v))
	return i, nil
}

// header starts an inode in t.buf and records where it is written.
func (t *tables) header(n *node, typ uint16) error {
	uid, err := t.id(n.e.UID)
	if err != nil {
		return err
	}
	gid, err := t.id(n.e.GID)
	if err != nil {
		return err
	}
	block, off := t.inodes.ref()
	if block > max32 {
		return fmt.Errorf("inode table larger than 4 GiB (too many files): %w", ErrLimit)
	}
	n.ref = block<<16 | uint64(off)
	n.written = true
	b := t.buf[:0]
	b = le.AppendUint16(b, typ)
	b = le.AppendUint16(b, uint16(n.e.Mode&0o7777))
	b = le.AppendUint16(b, uid)
	b = le.AppendUint16(b, gid)
	b = le.AppendUint32(b, 0) // mtime
	b = le.AppendUint32(b, n.ino)
	t.buf = b
	return nil
}

// writeDir writes the inodes of dir's subtree, then dir's listing and inode.
func (t *tables) writeDir(dir *node, parent uint32) error {
	names := sortedNames(dir)
	subdirs := uint32(0)
	for _, name := range names {
		c := dir.children[name]
		if c.isDir() {
			subdirs++
			t.dirPath = append(t.dirPath, name)
			if err := t.writeDir(c, dir.ino); err != nil {
				return err
			}
			t.dirPath = t.dirPath[:len(t.dirPath)-1]
		} else if !c.written {
			if err := t.writeInode(c); err != nil {
				return fmt.Errorf("%s: %w", t.where(name), err)
			}
		}
	}
	block, off := t.dirs.ref()
	size := t.writeListing(dir, names) + 3
	if block > max32 {
		return fmt.Errorf("%s: directory table larger than 4 GiB (too many names): %w", t.where(""), ErrLimit)
	}
	if uint64(size) > max32 {
		return fmt.Errorf("%s: directory listing larger than 4 GiB (%d names): %w", t.where(""), len(names), ErrLimit)
	}
	if err := t.header(dir, typeDir); err != nil {
		return fmt.Errorf("%s: %w", t.where(""), err)
	}
	b := t.buf
	if size <= maxBasicDirSize {
		b = le.AppendUint32(b, uint32(block))
		b = le.AppendUint32(b, 2+subdirs)
		b = le.AppendUint16(b, uint16(size))
		b = le.AppendUint16(b, off)
		b = le.AppendUint32(b, parent)
	} else {
		le.PutUint16(b, typeLDir)
		b = le.AppendUint32(b, 2+subdirs)
		b = le.AppendUint32(b, uint32(size))
		b = le.AppendUint32(b, uint32(block))
		b = le.AppendUint32(b, parent)
		b = le.AppendUint16(b, 0) // no directory index: lookups scan
		b = le.AppendUint16(b, off)
		b = le.AppendUint32(b, invalidFrag) // no xattrs
	}
	t.buf = b
	t.inodes.write(b)
	return nil
}

// writeListing writes dir's entries (names sorted) and returns their size:
// runs of at most 256 entries whose inodes share a metadata block and whose
// numbers are within an int16 of the run's first.
func (t *tables) writeListing(dir *node, names []string) int {
	var b []byte
	for i := 0; i < len(names); {
		first := dir.children[names[i]]
		j := i + 1
		for ; j < len(names) && j-i < maxDirEntries; j++ {
			c := dir.children[names[j]]
			d := int64(c.ino) - int64(first.ino)
			if c.ref>>16 != first.ref>>16 || d < math.MinInt16 || d > math.MaxInt16 {
				break
			}
		}
		b = le.AppendUint32(b, uint32(j-i-1))
		b = le.AppendUint32(b, uint32(first.ref>>16))
		b = le.AppendUint32(b, first.ino)
		for _, name := range names[i:j] {
			c := dir.children[name]
			b = le.AppendUint16(b, uint16(c.ref&0xffff))
			b = le.AppendUint16(b, uint16(int16(int64(c.ino)-int64(first.ino))))
			b = le.AppendUint16(b, basicType(c.e.Type))
			b = le.AppendUint16(b, uint16(len(name)-1))
			b = append(b, name...)
		}
		i = j
	}
	t.dirs.write(b)
	return len(b)
}

func basicType(tf byte) uint16 {
	switch tf {
	case tar.TypeDir:
		return typeDir
	case tar.TypeReg:
		return typeFile
	case tar.TypeSymlink:
		return typeSymlink
	case tar.TypeBlock:
		return typeBlock
	case tar.TypeChar:
		return typeChar
	default:
		return typeFifo
	}
}

// writeInode writes the inode of a non-directory.
func (t *tables) writeInode(n *node) error {
	typ := basicType(n.e.Type)
	d := n.e.Data
	ext := typ == typeFile && (n.nlink > 1 || d.start > math.MaxUint32 || d.size > math.MaxUint32)
	if ext {
		typ = typeLFile
	}
	if err := t.header(n, typ); err != nil {
		return err
	}
	b := t.buf
	switch typ {
	case typeFile:
		b = le.AppendUint32(b, uint32(d.start))
		b = le.AppendUint32(b, d.frag)
		b = le.AppendUint32(b, d.fragOff)
		b = le.AppendUint32(b, uint32(d.size))
		for _, s := range d.blocks {
			b = le.AppendUint32(b, s)
		}
	case typeLFile:
		b = le.AppendUint64(b, d.start)
		b = le.AppendUint64(b, uint64(d.size))
		b = le.AppendUint64(b, 0) // sparse bytes
		b = le.AppendUint32(b, n.nlink)
		b = le.AppendUint32(b, d.frag)
		b = le.AppendUint32(b, d.fragOff)
		b = le.AppendUint32(b, invalidFrag) // no xattrs
		for _, s := range d.blocks {
			b = le.AppendUint32(b, s)
		}
	case typeSymlink:
		b = le.AppendUint32(b, n.nlink)
		b = le.AppendUint32(b, uint32(len(n.e.Target)))
		b = append(b, n.e.Target...)
	case typeBlock, typeChar:
		b = le.AppendUint32(b, n.nlink)
		b = le.AppendUint32(b, encodeDev(n.e.Major, n.e.Minor))
	default:
		b = le.AppendUint32(b, n.nlink)
	}
	t.buf = b
	t.inodes.write(b)
	return nil
}

// encodeDev is the kernel's new_encode_dev, how squashfs stores a device.
func encodeDev(major, minor int64) uint32 {
	ma, mi := uint32(major), uint32(minor)
	return mi&0xff | ma<<8 | (mi&^0xff)<<12
}
