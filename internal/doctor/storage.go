package doctor

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/catalog"
	"github.com/scivision-hpc/scv-hpc/internal/fetch"
	"github.com/scivision-hpc/scv-hpc/internal/units"
)

// minFreeBytes is the free space below which the cache and scratch checks warn: a
// conversion needs room for the unpacked root filesystem and the SIF.
const minFreeBytes = 5 << 30

// fsKind names a file system magic number (statfs f_type) and says whether other
// nodes of a cluster can see it.
type fsKind struct {
	name   string
	shared bool
}

// fsMagic maps statfs f_type values to file system names (linux/magic.h and the
// vendors' headers for Lustre, GPFS, BeeGFS, Panasas, WekaFS).
var fsMagic = map[int64]fsKind{
	0x6969:     {"nfs", true},
	0x0BD00BD0: {"lustre", true},
	0x47504653: {"gpfs", true},
	0x19830326: {"beegfs", true},
	0x00C36400: {"cephfs", true},
	0xAAD7AAEA: {"panfs", true},
	0x013111A8: {"ibrix", true},
	0x5346414F: {"afs", true},
	0xFE534D42: {"smb2", true},
	0xFF534D42: {"cifs", true},
	0x65735546: {"fuse", false},
	0xEF53:     {"ext2/3/4", false},
	0x58465342: {"xfs", false},
	0x9123683E: {"btrfs", false},
	0x2FC12FC1: {"zfs", false},
	0x01021994: {"tmpfs", false},
	0x794C7630: {"overlayfs", false},
	0x73717368: {"squashfs", false},
	0x858458F6: {"ramfs", false},
}

// fsName returns the name of a statfs magic number, and whether it is a network or
// parallel file system that compute nodes share.
func fsName(magic int64) (name string, shared bool) {
	if k, ok := fsMagic[magic]; ok {
		return k.name, k.shared
	}
	return fmt.Sprintf("unknown (magic 0x%X)", magic), false
}

// existingAncestor returns dir or its nearest parent that exists.
func (d *doctor) existingAncestor(dir string) (string, error) {
	p := filepath.Clean(dir)
	for {
		_, err := d.p.Stat(p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return p, err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return p, err
		}
		p = parent
	}
}

// describeFS says which file system dir is on and how much is free; low is true when
// the free space is under minFreeBytes.
func (d *doctor) describeFS(dir string) (desc string, shared, low bool) {
	info, err := d.p.Statfs(dir)
	if err != nil {
		return "file system unknown (" + err.Error() + ")", false, false
	}
	name, shared := fsName(info.Magic)
	where := "local to this node"
	if shared {
		where = "shared with other nodes"
	}
	return fmt.Sprintf("%s, %s, %s free", name, where, units.Bytes(int64(info.FreeBytes))), shared, info.FreeBytes < minFreeBytes
}

func (d *doctor) cacheDir(dir string) Check {
	c := Check{Name: "cache directory"}
	if dir == "" {
		c.Status, c.Detail = Fail, "no cache directory configured"
		c.Fix = "set --cache DIR or SCV_HPC_CACHE"
		return c
	}
	at, err := d.existingAncestor(dir)
	if err != nil {
		c.Status, c.Detail = Fail, fmt.Sprintf("%s: %v", dir, err)
		c.Fix = "check the path and its permissions, or set --cache / SCV_HPC_CACHE to another directory"
		return c
	}
	fsDesc, shared, low := d.describeFS(at)
	exists := at == filepath.Clean(dir)
	werr := d.p.TryWrite(at)
	switch {
	case werr == nil && exists:
		c.Status, c.Detail = OK, fmt.Sprintf("%s: writable; %s", dir, fsDesc)
	case werr == nil:
		c.Status, c.Detail = OK, fmt.Sprintf("%s: not created yet (the first pull creates it under %s); %s", dir, at, fsDesc)
	case exists:
		c.Status = Warn
		c.Detail = fmt.Sprintf("%s: read-only (%v); %s; reading staged models works, pulling new ones does not", dir, unwrapPath(werr), fsDesc)
		c.Fix = "fine on compute nodes; stage models from a node where the cache is writable, or set --cache to a writable directory"
		return c
	default:
		c.Status = Fail
		c.Detail = fmt.Sprintf("%s does not exist and %s is not writable (%v)", dir, at, unwrapPath(werr))
		c.Fix = "create it (mkdir -p " + dir + ") where you have write access, or set --cache / SCV_HPC_CACHE"
		return c
	}
	switch {
	case low:
		c.Status = Warn
		c.Fix = "free space is low: a conversion needs about twice the image's size; run 'scv-hpc cache gc' or point --cache elsewhere"
	case !shared:
		c.Detail += " (compute nodes need a shared cache: use a shared --cache, or 'scv-hpc cache export/import')"
	}
	return c
}

func (d *doctor) tmpDir(dir string) Check {
	c := Check{Name: "scratch directory"}
	werr := d.p.TryWrite(dir)
	fsDesc, _, low := d.describeFS(dir)
	switch {
	case werr != nil:
		c.Status = Fail
		c.Detail = fmt.Sprintf("%s: not writable (%v)", dir, unwrapPath(werr))
		c.Fix = "set TMPDIR or --tmpdir to a writable directory with space (conversions unpack images there)"
	case low:
		c.Status = Warn
		c.Detail = fmt.Sprintf("%s: %s", dir, fsDesc)
		c.Fix = "conversions unpack the image here: set TMPDIR or --tmpdir to a directory with more space (node-local scratch is best)"
	default:
		c.Status, c.Detail = OK, fmt.Sprintf("%s: writable; %s", dir, fsDesc)
	}
	return c
}

// unwrapPath drops the *fs.PathError wrapper, whose path the detail already names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (d *doctor) offline(cat *catalog.Catalog, dir string) Check {
	c := Check{Name: "offline readiness"}
	entries := cat.Entries()
	if len(entries) == 0 {
		c.Status, c.Detail = OK, "the catalog is empty"
		return c
	}
	store := cache.Open(dir)
	var cached, missing, broken []string
	for _, e := range entries {
		t, err := fetch.Parse(e.ID(), cat)
		if err != nil {
			broken = append(broken, fmt.Sprintf("%s (%v)", e.ID(), err))
			continue
		}
		_, _, _, err = fetch.Cached(store, t)
		switch {
		case err == nil:
			cached = append(cached, e.ID())
		case errors.Is(err, cache.ErrNotCached):
			missing = append(missing, e.ID())
		default:
			broken = append(broken, fmt.Sprintf("%s (%v)", e.ID(), err))
		}
	}
	sort.Strings(cached)
	sort.Strings(missing)
	c.Detail = fmt.Sprintf("%d of %d catalog models cached", len(cached), len(entries))
	if len(cached) > 0 {
		c.Detail += ": " + strings.Join(cached, ", ")
	}
	if len(missing) > 0 {
		c.Detail += "; not cached: " + strings.Join(missing, ", ")
	}
	if len(broken) > 0 {
		c.Detail += "; unusable: " + strings.Join(broken, "; ")
	}
	switch {
	case len(broken) > 0:
		c.Status = Warn
		c.Fix = "run 'scv-hpc cache verify' and re-stage the models named above"
	case len(missing) > 0:
		c.Status = Warn
		c.Fix = fmt.Sprintf("before going offline run 'scv-hpc stage %s --cache %s' on a node with network (or 'scv-hpc cache import BUNDLE')",
			strings.Join(missing, " "), dir)
	default:
		c.Status = OK
	}
	return c
}
