package convert

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/scivision-hpc/scv-hpc/internal/fsutil"
)

// maxSymlinks bounds the symlinks followed while resolving one path, like the
// kernel's ELOOP limit (40 on Linux).
const maxSymlinks = 40

// ErrUnsafePath marks a layer entry that would escape the root filesystem: a
// name or hard-link target whose ".." components climb above the root.
var ErrUnsafePath = errors.New("path escapes the root filesystem")

// errTooManyLinks is returned when resolving a path meets a symlink loop.
var errTooManyLinks = errors.New("too many levels of symbolic links")

// cleanEntryName turns a tar entry name (or a hard-link target) into a clean
// path relative to the root. Leading "/" are dropped (an OCI layer's absolute
// names are relative to the image root, as every container runtime reads
// them). A name whose ".." components climb above the root, or that holds a
// NUL byte, is rejected with ErrUnsafePath. The root itself is "".
func cleanEntryName(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("%q: NUL byte in name: %w", name, ErrUnsafePath)
	}
	rel := path.Clean(strings.TrimLeft(name, "/"))
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%q: %w", name, ErrUnsafePath)
	}
	if rel == "." {
		return "", nil
	}
	return rel, nil
}

// rootFS is a directory being filled as the root filesystem of an image.
// Every path it is given is resolved inside the root the way a container
// sees it (like openat2's RESOLVE_IN_ROOT): symlinks are followed with the
// root as "/", and ".." never climbs above the root. The result of resolve
// therefore always lies inside the root, whatever symlinks the layers made.
//
// rootFS has a single writer (the conversion), so no other process changes
// the tree between a resolution and its use.
type rootFS struct {
	root string // absolute, clean host path of the root directory
	// onRemove, when set, is told the resolved path of every entry that
	// prepareEntry removes to make way for a new one.
	onRemove func(res string)
}

func newRootFS(dir string) (*rootFS, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	return &rootFS{root: filepath.Clean(abs)}, nil
}

// host maps a resolved relative path (no symlinks, no "..") to its host path.
func (r *rootFS) host(rel string) string {
	if rel == "" {
		return r.root
	}
	return r.root + string(filepath.Separator) + filepath.FromSlash(rel)
}

// resolve resolves name inside the root and returns the resolved path
// relative to the root ("" is the root itself). Symlinks met on the way are
// followed inside the root; the last component is followed only when
// followLast is true. Components that do not exist are kept as they are, so
// the result can be used to create them. No component of the result before
// the last is a symlink at the time of the call.
func (r *rootFS) resolve(name string, followLast bool) (string, error) {
	pending := splitPath(name)
	cur := ""
	links := 0
	for len(pending) > 0 {
		part := pending[0]
		pending = pending[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			cur = parentRel(cur)
			continue
		}
		next := part
		if cur != "" {
			next = cur + "/" + part
		}
		if len(pending) == 0 && !followLast {
			cur = next
			break
		}
		fi, err := os.Lstat(r.host(next))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				cur = next // created later, or the caller's operation fails clearly
				continue
			}
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		links++
		if links > maxSymlinks {
			return "", fmt.Errorf("resolve %q: %w", name, errTooManyLinks)
		}
		target, err := os.Readlink(r.host(next))
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(target, "/") {
			cur = "" // absolute targets start again at the root, as in the container
		}
		pending = append(splitPath(target), pending...)
	}
	return cur, nil
}

// resolveParent resolves the directory holding rel (following symlinks in
// the root) and returns the resolved relative path of rel itself, its last
// component not followed.
func (r *rootFS) resolveParent(rel string) (string, error) {
	return resolveParentWith(rel, r.resolve)
}

// resolveParentWith resolves rel's directory with resolve and joins rel's
// last component to it, not followed (rootFS and tree resolve alike).
func resolveParentWith(rel string, resolve func(string, bool) (string, error)) (string, error) {
	dir, base := path.Split(rel)
	pdir, err := resolve(dir, true)
	if err != nil {
		return "", err
	}
	if pdir == "" {
		return base, nil
	}
	return pdir + "/" + base, nil
}

// mkdirAll makes the directory rel and its missing parents (mode 0755),
// resolving symlinks inside the root, and returns the resolved path.
func (r *rootFS) mkdirAll(rel string) (string, error) {
	res, err := r.resolve(rel, true)
	if err != nil {
		return "", err
	}
	cur := ""
	for _, part := range splitPath(res) {
		if cur == "" {
			cur = part
		} else {
			cur += "/" + part
		}
		err := os.Mkdir(r.host(cur), 0o755)
		if err == nil {
			continue
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
		fi, err := os.Lstat(r.host(cur))
		if err != nil {
			return "", err
		}
		if !fi.IsDir() {
			return "", fmt.Errorf("/%s: %w", cur, syscall.ENOTDIR)
		}
	}
	return res, nil
}

// prepareEntry makes the parents of rel and clears the way for a new entry
// at rel: whatever is there is removed, except a directory when keepDir is
// set. It returns the resolved relative path of the entry.
func (r *rootFS) prepareEntry(rel string, keepDir bool) (string, error) {
	dir, base := path.Split(rel)
	pdir, err := r.mkdirAll(dir)
	if err != nil {
		return "", err
	}
	res := base
	if pdir != "" {
		res = pdir + "/" + base
	}
	fi, err := os.Lstat(r.host(res))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return res, nil
	case err != nil:
		return "", err
	case keepDir && fi.IsDir():
		return res, nil
	}
	if err := fsutil.RemoveAll(r.host(res)); err != nil {
		return "", err
	}
	if r.onRemove != nil && fi.IsDir() {
		r.onRemove(res)
	}
	return res, nil
}

// isPlain reports whether rel names an existing entry reached without any
// symlink in its parents, that is, exactly the host path it spells.
func (r *rootFS) isPlain(rel string) (fs.FileInfo, bool) {
	res, err := r.resolveParent(rel)
	if err != nil || res != rel {
		return nil, false
	}
	fi, err := os.Lstat(r.host(rel))
	if err != nil {
		return nil, false
	}
	return fi, true
}

func splitPath(p string) []string {
	return strings.FieldsFunc(p, func(c rune) bool { return c == '/' })
}

func parentRel(rel string) string {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[:i]
	}
	return ""
}
