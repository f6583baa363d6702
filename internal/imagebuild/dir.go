package imagebuild

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// DirOption changes how LayerFromDir reads a directory.
type DirOption func(*dirOptions)

type dirOptions struct {
	prefix   string
	owner    bool
	uid, gid int
	onSkip   func(path, reason string)
}

// WithPrefix places the directory's content under prefix inside the image (default /).
func WithPrefix(prefix string) DirOption { return func(o *dirOptions) { o.prefix = prefix } }

// WithOwner gives every entry this owner instead of the host file's (useful for a
// rootfs unpacked by an unprivileged user).
func WithOwner(uid, gid int) DirOption {
	return func(o *dirOptions) { o.owner, o.uid, o.gid = true, uid, gid }
}

// WithSkipped is called for each entry left out (devices, sockets, pipes).
func WithSkipped(f func(path, reason string)) DirOption {
	return func(o *dirOptions) { o.onSkip = f }
}

// LayerFromDir packs a whole directory tree, e.g. a debootstrap root file system, into a
// layer: regular files, directories, symlinks (targets kept verbatim) and hard links
// (the second and later names of a file become tar hard links), with their modes and
// owners. Device nodes, sockets and pipes are skipped (see WithSkipped): containers get
// /dev from the runtime. Entries are in lexical order and every time is Epoch. The tree
// is read once, by LayerFromDir; the layer is kept compressed in a temporary file (see
// newLayer), so TMPDIR needs room for it.
func LayerFromDir(root string, opts ...DirOption) (v1.Layer, error) {
	o := dirOptions{prefix: "/"}
	for _, opt := range opts {
		opt(&o)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("layer from %s: %w", root, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("layer from %s: not a directory", root)
	}
	prefix := path.Clean("/" + filepath.ToSlash(o.prefix))
	if prefix != "/" {
		if _, err := cleanPath(prefix); err != nil {
			return nil, err
		}
	}
	return newLayer(func(tw *tar.Writer) error { return writeTree(tw, root, prefix, o) })
}

type inode struct{ dev, ino uint64 }

func writeTree(tw *tar.Writer, root, prefix string, o dirOptions) error {
	// Parent directories of the prefix itself.
	if prefix != "/" {
		parts := []string{}
		for d := path.Dir(prefix); d != "/"; d = path.Dir(d) {
			parts = append([]string{d}, parts...)
		}
		for _, d := range parts {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d[1:] + "/", Mode: 0o755, ModTime: Epoch, Format: tar.FormatPAX}); err != nil {
				return err
			}
		}
	}
	links := map[inode]string{}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("layer from %s: %w", root, err)
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := path.Join(prefix, filepath.ToSlash(rel))
		if name == "/" {
			return nil // the root itself: the image's / is the runtime's
		}
		name = name[1:]
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("layer from %s: %w", root, err)
		}
		h := &tar.Header{Name: name, ModTime: Epoch, Mode: tarMode(info.Mode()), Format: tar.FormatPAX}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			h.Uid, h.Gid = int(st.Uid), int(st.Gid)
		}
		if o.owner {
			h.Uid, h.Gid = o.uid, o.gid
		}
		switch m := info.Mode(); {
		case m.IsDir():
			h.Typeflag, h.Name = tar.TypeDir, name+"/"
			return tw.WriteHeader(h)
		case m&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("layer from %s: %w", root, err)
			}
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, target, 0o777
			return tw.WriteHeader(h)
		case m.IsRegular():
			if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
				key := inode{uint64(st.Dev), uint64(st.Ino)}
				if first, seen := links[key]; seen {
					h.Typeflag, h.Linkname = tar.TypeLink, first
					return tw.WriteHeader(h)
				}
				links[key] = name
			}
			return copyFile(tw, h, p, info.Size())
		default:
			if o.onSkip != nil {
				o.onSkip(p, "not a regular file, directory or symlink ("+m.Type().String()+")")
			}
			return nil
		}
	})
}

func copyFile(tw *tar.Writer, h *tar.Header, p string, size int64) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("add %s: %w", p, err)
	}
	defer f.Close()
	h.Typeflag, h.Size = tar.TypeReg, size
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("add %s: %w", p, err)
	}
	n, err := io.Copy(tw, io.LimitReader(f, size))
	if err == nil && n != size {
		err = fmt.Errorf("file shrank while being read (%d of %d bytes)", n, size)
	}
	if err != nil {
		return fmt.Errorf("add %s: %w", p, err)
	}
	return nil
}
