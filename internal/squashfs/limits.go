package squashfs

import (
	"archive/tar"
	"errors"
	"fmt"
	"math"
	"path"
	"strings"

	"github.com/scivision-hpc/scv-hpc/internal/tarsafe"
)

// Limits of squashfs 4.0 and of Linux that the writer enforces. Past them
// mksquashfs and tar2sqfs write images the kernel or unsquashfs refuse, or
// silently store another value (a uid of 2^32 as 0, a device 4096:0 as 0:0);
// the writer refuses the entry instead, naming it.
const (
	// MaxNameLen is the longest name of one directory entry: NAME_MAX. The
	// kernel's squashfs reads 256, but no other file system or tool takes a
	// name that long.
	MaxNameLen = 255
	// MaxPathLen is the longest path below the root: with its leading "/",
	// as the container names it, PATH_MAX less its NUL. A longer one cannot
	// be named in a system call from the root, nor be made by a container
	// engine extracting the layer.
	MaxPathLen = 4094
	// MaxSymlinkLen is the longest symlink target: symlink(2) takes no more,
	// and the kernel's squashfs refuses a target longer than a page.
	MaxSymlinkLen = 4095
	// MaxID is the largest uid or gid: the id table holds 32 bits, and
	// 2^32-1 is (uid_t)-1, no owner in Linux (the kernel shows it as the
	// overflow uid, 65534; chown(2) takes it as "unchanged").
	MaxID = math.MaxUint32 - 1
	// MaxIDs is the most distinct uids and gids (together) of an image: the
	// superblock counts them in 16 bits, and a count of 0 (65536 ids) is
	// refused by the kernel and unsquashfs.
	MaxIDs = math.MaxUint16
	// MaxDevMajor and MaxDevMinor are the largest device numbers a squashfs
	// inode stores (the kernel's 32-bit new_encode_dev: 12 bits of major, 20
	// of minor).
	MaxDevMajor = 1<<12 - 1
	MaxDevMinor = 1<<20 - 1
)

// ErrLimit is an entry or an image beyond what squashfs 4.0 or Linux can
// hold (see the Max constants).
var ErrLimit = errors.New("beyond what squashfs and Linux can hold")

// max32 is the largest value of the format's 32-bit sizes and offsets
// checked at Close (a directory listing, the start of a directory's listing in
// the directory table, of an inode in the inode table); a variable so that
// tests reach it without gigabytes of metadata.
var max32 uint64 = math.MaxUint32

// CheckName returns an ErrLimit error when name, once cleaned as Add cleans
// it, is longer than MaxPathLen, has an element longer than MaxNameLen or
// holds a NUL byte (a tar stream cannot carry one; a caller of Add can).
func CheckName(name string) error {
	_, err := cleanName(name)
	return err
}

// cleanName is name without "." and ".." (never above the root) and
// without leading, trailing or double slashes, checked against the limits.
func cleanName(name string) (string, error) {
	clean := strings.Trim(path.Clean("/"+name), "/")
	if strings.IndexByte(clean, 0) >= 0 {
		return "", fmt.Errorf("a NUL byte in the path: %w", ErrLimit)
	}
	if len(clean) > MaxPathLen {
		return "", fmt.Errorf("path of %d bytes, longer than %d: %w", len(clean), MaxPathLen, ErrLimit)
	}
	for el := range strings.SplitSeq(clean, "/") {
		if len(el) > MaxNameLen {
			return "", fmt.Errorf("name %s of %d bytes, longer than %d: %w", tarsafe.Quote(el), len(el), MaxNameLen, ErrLimit)
		}
	}
	return clean, nil
}

// CheckEntry returns an ErrLimit error for the attributes of e that an
// image cannot hold: an owner outside 0 to MaxID, a symlink target that is
// empty, longer than MaxSymlinkLen or holds a NUL byte, device numbers
// beyond MaxDevMajor and MaxDevMinor. It does not look at Data.
func CheckEntry(e Entry) error {
	if e.UID < 0 || e.GID < 0 || int64(e.UID) > MaxID || int64(e.GID) > MaxID {
		return fmt.Errorf("owner %d:%d outside 0 to %d: %w", e.UID, e.GID, MaxID, ErrLimit)
	}
	switch e.Type {
	case tar.TypeSymlink:
		if e.Target == "" {
			return fmt.Errorf("symlink with an empty target: %w", ErrLimit)
		}
		if strings.IndexByte(e.Target, 0) >= 0 {
			return fmt.Errorf("a NUL byte in the symlink target: %w", ErrLimit)
		}
		if len(e.Target) > MaxSymlinkLen {
			return fmt.Errorf("symlink target of %d bytes, longer than %d: %w", len(e.Target), MaxSymlinkLen, ErrLimit)
		}
	case tar.TypeChar, tar.TypeBlock:
		if e.Major < 0 || e.Major > MaxDevMajor || e.Minor < 0 || e.Minor > MaxDevMinor {
			return fmt.Errorf("device %d:%d beyond %d:%d: %w", e.Major, e.Minor, MaxDevMajor, MaxDevMinor, ErrLimit)
		}
	}
	return nil
}
