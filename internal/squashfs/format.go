// Package squashfs writes squashfs 4.0 file systems, the partition format of a
// SIF, in one streaming pass: file contents are cut into blocks and
// compressed on every core while they arrive, in any order of files; the
// directory tree is given by name and written, with the inode, directory,
// fragment and id tables, when the writer is closed. Nothing is written to a
// tree on disk, and the same calls give a byte-identical image.
//
// What it writes is what the Linux kernel, squashfuse, unsquashfs,
// Apptainer and SingularityCE read: gzip (zlib, compressor id 1) or zstd
// (id 6) blocks of 128 KiB by default, tails of files packed into fragment
// blocks, uids and gids in the id table, hard links sharing one inode, no
// xattrs, no NFS export table, every time 0. Files of the same content are
// not deduplicated and zero blocks are stored like any other.
//
// The layout follows mksquashfs: superblock, data and fragment blocks, inode
// table, directory table, fragment table, id table, padding to 4 KiB. The
// kernel checks that order when it mounts.
package squashfs

import "encoding/binary"

// Format constants (squashfs_fs.h).
const (
	magic           = 0x73717368
	superblockSize  = 96
	metaBlockSize   = 8192
	metaUncompBit   = 0x8000
	dataUncompBit   = 1 << 24
	invalidFrag     = 0xffffffff
	noTable         = ^uint64(0)
	flagNoXattrs    = 1 << 9
	maxDirEntries   = 256
	fragEntrySize   = 16
	padTo           = 4096
	maxBasicDirSize = 0xffff
)

// Inode types; directory entries always use the basic ones.
const (
	typeDir     = 1
	typeFile    = 2
	typeSymlink = 3
	typeBlock   = 4
	typeChar    = 5
	typeFifo    = 6
	typeLDir    = 8
	typeLFile   = 9
)

// Compressor ids of the superblock.
const (
	compGzip = 1
	compZstd = 6
)

var le = binary.LittleEndian

// superblock is the fixed 96-byte header at offset 0.
type superblock struct {
	inodes        uint32
	blockSize     uint32
	fragments     uint32
	compression   uint16
	blockLog      uint16
	flags         uint16
	ids           uint16
	rootInode     uint64
	bytesUsed     uint64
	idTable       uint64
	inodeTable    uint64
	dirTable      uint64
	fragmentTable uint64
}

func (s *superblock) bytes() []byte {
	b := make([]byte, 0, superblockSize)
	b = le.AppendUint32(b, magic)
	b = le.AppendUint32(b, s.inodes)
	b = le.AppendUint32(b, 0) // modification time
	b = le.AppendUint32(b, s.blockSize)
	b = le.AppendUint32(b, s.fragments)
	b = le.AppendUint16(b, s.compression)
	b = le.AppendUint16(b, s.blockLog)
	b = le.AppendUint16(b, s.flags)
	b = le.AppendUint16(b, s.ids)
	b = le.AppendUint16(b, 4) // version 4.0
	b = le.AppendUint16(b, 0)
	b = le.AppendUint64(b, s.rootInode)
	b = le.AppendUint64(b, s.bytesUsed)
	b = le.AppendUint64(b, s.idTable)
	b = le.AppendUint64(b, noTable) // xattr id table
	b = le.AppendUint64(b, s.inodeTable)
	b = le.AppendUint64(b, s.dirTable)
	b = le.AppendUint64(b, s.fragmentTable)
	b = le.AppendUint64(b, noTable) // export (lookup) table
	return b
}
