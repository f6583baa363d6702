package convert

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/scivision-hpc/scv-hpc/internal/fsutil"
	"github.com/scivision-hpc/scv-hpc/internal/tarsafe"
)

const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// flattener applies the layers of an image, lowest first, to a rootFS.
type flattener struct {
	fs     *rootFS
	log    zerolog.Logger
	isRoot bool
	// dirModes holds the mode of every directory the layers made; modes are
	// applied once all layers are in, so that a read-only directory of the
	// image does not block the layers above it.
	dirModes map[string]fs.FileMode
	// touched holds the paths (and their parents) written by the layer being
	// applied: an opaque whiteout hides only what lower layers made.
	touched map[string]bool
	// owners holds, for an unprivileged conversion, the owner and mode of
	// every entry the layers made, and the device nodes it could not make;
	// mksquashfs applies them from a pseudo file (see pseudo.go).
	owners  map[string]owner
	entries int
	skipped int
}

func newFlattener(root *rootFS, log zerolog.Logger) *flattener {
	return &flattener{
		fs:       root,
		log:      log,
		isRoot:   runningAsRoot(),
		dirModes: map[string]fs.FileMode{"": 0o755},
		owners:   map[string]owner{},
	}
}

// flattenImage writes the union of img's layers into root.
func flattenImage(ctx context.Context, img v1.Image, root *rootFS, log zerolog.Logger) (*flattener, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("list layers: %w", err)
	}
	return flattenLayers(ctx, layers, root, log)
}

// flattenLayers writes the union of layers (lowest first) into root.
func flattenLayers(ctx context.Context, layers []v1.Layer, root *rootFS, log zerolog.Logger) (*flattener, error) {
	f := newFlattener(root, log)
	root.onRemove = func(res string) { f.forget(res, true) }
	defer func() { root.onRemove = nil }()
	for i, l := range layers {
		if err := f.applyLayerOf(ctx, l); err != nil {
			return nil, layerErr(layers, i, err)
		}
	}
	if err := f.finish(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *flattener) applyLayerOf(ctx context.Context, l v1.Layer) error {
	rc, err := openLayer(l)
	if err != nil {
		return err
	}
	defer rc.Close()
	f.touched = map[string]bool{}
	// readTar reads the layer to its end: a registry layer checks its digest at
	// EOF, after the tar's end-of-archive blocks.
	return readTar(ctx, rc, func(hdr *tar.Header, _ int, r io.Reader) error {
		if err := f.applyEntry(hdr, r); err != nil {
			return fmt.Errorf("entry %s: %w", tarsafe.Quote(hdr.Name), err)
		}
		return nil
	})
}

func (f *flattener) applyEntry(hdr *tar.Header, r io.Reader) error {
	rel, err := cleanEntryName(hdr.Name)
	if err != nil {
		return err
	}
	f.entries++
	// The limits of an image, as the merge of the other packers checks them.
	if err := checkHeader(rel, hdr); err != nil {
		return err
	}
	base := path.Base(rel)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return f.whiteout(rel, base)
	}
	f.touch(rel)
	if rel == "" {
		// The layer's own "./": only its mode and owner matter.
		if hdr.Typeflag == tar.TypeDir {
			f.dirModes[""] = fs.FileMode(hdr.Mode & 0o7777)
			f.record("", hdr)
			return f.chown("", hdr)
		}
		return nil
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		res, err := f.fs.prepareEntry(rel, true)
		if err != nil {
			return err
		}
		if err := os.Mkdir(f.fs.host(res), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		f.dirModes[res] = fs.FileMode(hdr.Mode & 0o7777)
		f.record(res, hdr)
		return f.chown(res, hdr)
	//lint:ignore SA1019 old tar writers still write TypeRegA; taken as a regular file
	case tar.TypeReg, tar.TypeRegA:
		return f.writeFile(rel, hdr, r)
	case tar.TypeSymlink:
		res, err := f.fs.prepareEntry(rel, false)
		if err != nil {
			return err
		}
		// The target is stored as written; it is resolved by the container,
		// never followed here.
		if err := os.Symlink(hdr.Linkname, f.fs.host(res)); err != nil {
			return err
		}
		f.record(res, hdr)
		return f.chown(res, hdr)
	case tar.TypeLink:
		return f.hardLink(rel, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return f.special(rel, hdr)
	case tar.TypeXGlobalHeader, tar.TypeXHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
		return nil
	default:
		f.skipped++
		f.log.Warn().Str("entry", hdr.Name).Int("type", int(hdr.Typeflag)).Msg("skipping layer entry of unsupported type")
		return nil
	}
}

func (f *flattener) writeFile(rel string, hdr *tar.Header, r io.Reader) error {
	res, err := f.fs.prepareEntry(rel, false)
	if err != nil {
		return err
	}
	fd, err := os.OpenFile(f.fs.host(res), os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(fd, r); err != nil {
		fd.Close()
		return err
	}
	mode := uint32(hdr.Mode & 0o7777)
	if !f.isRoot {
		mode |= 0o600 // mksquashfs must read it; the owner cannot be kept anyway
	}
	// Ownership first: chown clears set-user-ID bits.
	if f.isRoot {
		if err := fd.Chown(hdr.Uid, hdr.Gid); err != nil {
			fd.Close()
			return err
		}
	}
	if err := unix.Fchmod(int(fd.Fd()), mode); err != nil {
		fd.Close()
		return err
	}
	f.record(res, hdr)
	return fd.Close()
}

func (f *flattener) hardLink(rel string, hdr *tar.Header) error {
	target, err := cleanEntryName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hard link target: %w", err)
	}
	tres, err := f.fs.resolveParent(target)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(f.fs.host(tres))
	if err != nil {
		return fmt.Errorf("hard link to %q: %w", hdr.Linkname, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("hard link to directory %q is not allowed", hdr.Linkname)
	}
	if res, err := f.fs.resolveParent(rel); err == nil && res == tres {
		return nil // a link to itself: the entry is already there
	}
	res, err := f.fs.prepareEntry(rel, false)
	if err != nil {
		return err
	}
	if err := os.Link(f.fs.host(tres), f.fs.host(res)); err != nil {
		return err
	}
	if o, ok := f.owners[tres]; ok {
		f.owners[res] = o // one inode: the same owner and mode
	}
	return nil
}

func (f *flattener) special(rel string, hdr *tar.Header) error {
	res, err := f.fs.prepareEntry(rel, false)
	if err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeFifo && !f.isRoot {
		// Only root can make a device node; mksquashfs adds it from the
		// pseudo file instead.
		f.record(res, hdr)
		return nil
	}
	mode := uint32(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeChar:
		mode |= unix.S_IFCHR
	case tar.TypeBlock:
		mode |= unix.S_IFBLK
	default:
		mode |= unix.S_IFIFO
	}
	dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
	if err := unix.Mknod(f.fs.host(res), mode, int(dev)); err != nil {
		return err
	}
	if err := f.chown(res, hdr); err != nil {
		return err
	}
	f.record(res, hdr)
	return unix.Fchmodat(unix.AT_FDCWD, f.fs.host(res), mode&0o7777, 0)
}

func (f *flattener) chown(res string, hdr *tar.Header) error {
	if !f.isRoot {
		return nil
	}
	return os.Lchown(f.fs.host(res), hdr.Uid, hdr.Gid)
}

// whiteout applies a ".wh." entry: it hides a name, or makes its directory
// opaque, for the layers below.
func (f *flattener) whiteout(rel, base string) error {
	dir := parentRel(rel)
	if base == whiteoutOpaque {
		res, err := f.fs.resolve(dir, true)
		if err != nil {
			return err
		}
		f.touch(dir)
		return f.clearLower(res, dir)
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil // other aufs metadata (.wh..wh.plnk, ...): nothing to apply
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		f.skipped++
		f.log.Warn().Str("entry", rel).Msg("skipping malformed whiteout")
		return nil
	}
	target := name
	if dir != "" {
		target = dir + "/" + name
	}
	res, err := f.fs.resolveParent(target)
	if err != nil {
		return err
	}
	// Only a directory (or what cannot be told) has recorded entries below it.
	fi, err := os.Lstat(f.fs.host(res))
	wasDir := err != nil || fi.IsDir()
	if err := fsutil.RemoveAll(f.fs.host(res)); err != nil {
		return err
	}
	f.forget(res, wasDir)
	return nil
}

// clearLower removes from the directory res (named rel in this layer) every
// child that the current layer did not write.
func (f *flattener) clearLower(res, rel string) error {
	ents, err := os.ReadDir(f.fs.host(res))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		childRel := path.Join(rel, e.Name())
		childRes := path.Join(res, e.Name())
		if !f.touched[childRel] {
			if err := fsutil.RemoveAll(f.fs.host(childRes)); err != nil {
				return err
			}
			f.forget(childRes, e.IsDir())
			continue
		}
		if e.IsDir() {
			if err := f.clearLower(childRes, childRel); err != nil {
				return err
			}
		}
	}
	return nil
}

// touch records rel and its parents as written by the current layer.
func (f *flattener) touch(rel string) {
	for rel != "" && !f.touched[rel] {
		f.touched[rel] = true
		rel = parentRel(rel)
	}
}

// forget drops what is recorded (directory modes, owners) of a removed path and,
// when it was a directory, of everything below it.
func (f *flattener) forget(res string, dir bool) {
	delete(f.dirModes, res)
	delete(f.owners, res)
	if !dir {
		return
	}
	prefix := res + "/"
	for p := range f.dirModes {
		if strings.HasPrefix(p, prefix) {
			delete(f.dirModes, p)
		}
	}
	for p := range f.owners {
		if strings.HasPrefix(p, prefix) {
			delete(f.owners, p)
		}
	}
}

// finish applies the directory modes, deepest first. A path that is no
// longer a plain directory (a later layer replaced a parent with a symlink)
// is left alone, so no chmod ever goes through a symlink.
func (f *flattener) finish() error {
	paths := make([]string, 0, len(f.dirModes))
	for p := range f.dirModes {
		paths = append(paths, p)
	}
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	for _, p := range paths {
		mode := uint32(f.dirModes[p])
		if !f.isRoot {
			mode |= 0o700
		}
		if p == "" {
			if err := unix.Chmod(f.fs.root, mode); err != nil {
				return err
			}
			continue
		}
		fi, ok := f.fs.isPlain(p)
		if !ok || !fi.IsDir() {
			continue
		}
		if err := unix.Chmod(f.fs.host(p), mode); err != nil {
			return err
		}
	}
	return nil
}
