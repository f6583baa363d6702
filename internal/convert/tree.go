package convert

import (
	"archive/tar"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/scivision-hpc/scv-hpc/internal/squashfs"
	"github.com/scivision-hpc/scv-hpc/internal/tarsafe"
)

// inode is one file of the merged image tree kept in memory by the streaming
// conversion. Hard links are several names of one *inode.
type inode struct {
	typ          byte  // tar.TypeDir, TypeReg, TypeSymlink, TypeChar, TypeBlock or TypeFifo
	mode         int64 // permission bits with set-id and sticky bits
	uid, gid     int
	link         string // symlink target, as written by the layer
	major, minor int64
	size         int64
	// A regular file's bytes are entry index of layer layer (counted from 0 over
	// every header of the layer tar), or data when layer is -1 (files the
	// conversion writes itself: /.singularity.d).
	layer, index int
	data         []byte
	// origin is where a layer's regular file was made (resolved); its bytes
	// are written under that name while it still holds the file.
	origin   string
	children map[string]*inode // directories
}

func newDir(mode int64, uid, gid int) *inode {
	return &inode{typ: tar.TypeDir, mode: mode, uid: uid, gid: gid, layer: -1, children: map[string]*inode{}}
}

func (n *inode) isDir() bool { return n.typ == tar.TypeDir }

// tree is the merged root file system of an image, held as headers only. Its
// path operations follow rootFS exactly (rootfs.go): every name is resolved
// inside the root as the container sees it, symlinks followed with the root as
// "/", ".." never above the root. Nothing is ever written on the host, so no
// layer can reach outside; the rules are kept so that the SIF holds what the
// tree path would have made.
type tree struct {
	root *inode
}

func newTree() *tree { return &tree{root: newDir(0o755, 0, 0)} }

// lookup returns the inode at the resolved path res (no symlink followed), or
// ENOENT, or ENOTDIR when a component before the last is not a directory, as
// lstat(2) would.
func (t *tree) lookup(res string) (*inode, error) {
	cur := t.root
	for _, part := range splitPath(res) {
		if !cur.isDir() {
			return nil, syscall.ENOTDIR
		}
		next, ok := cur.children[part]
		if !ok {
			return nil, syscall.ENOENT
		}
		cur = next
	}
	return cur, nil
}

// resolve is rootFS.resolve over the tree. It walks from the inode reached,
// never again from the root, so each step costs the same however deep the
// path; a path that grows past squashfs.MaxPathLen on the way is an
// ErrLimit error. A walk is then at most maxSymlinks links of at most
// MaxSymlinkLen bytes each, as the kernel's.
func (t *tree) resolve(name string, followLast bool) (string, error) {
	pending := reversed(splitPath(name)) // the next part last: a link's parts are pushed, not prepended
	var parts []string
	var nodes []*inode // nodes[i]: the inode at parts[:i+1], nil where missing
	size := 0          // len of parts joined by "/"
	links := 0
	for len(pending) > 0 {
		part := pending[len(pending)-1]
		pending = pending[:len(pending)-1]
		switch part {
		case "", ".":
			continue
		case "..":
			if len(parts) > 0 {
				size -= len(parts[len(parts)-1]) + min(1, len(parts)-1)
				parts, nodes = parts[:len(parts)-1], nodes[:len(nodes)-1]
			}
			continue
		}
		dir := t.root
		if len(nodes) > 0 {
			dir = nodes[len(nodes)-1]
		}
		var n *inode
		if dir != nil && dir.isDir() {
			n = dir.children[part]
		}
		if n == nil || n.typ != tar.TypeSymlink || len(pending) == 0 && !followLast {
			// missing (made later, or the operation fails clearly) or not a link
			size += len(part) + min(1, len(parts))
			if size > squashfs.MaxPathLen {
				return "", fmt.Errorf("resolve %s: a path longer than %d bytes: %w", tarsafe.Quote(name), squashfs.MaxPathLen, squashfs.ErrLimit)
			}
			parts, nodes = append(parts, part), append(nodes, n)
			continue
		}
		links++
		if links > maxSymlinks {
			return "", fmt.Errorf("resolve %q: %w", name, errTooManyLinks)
		}
		if len(n.link) > 0 && n.link[0] == '/' {
			parts, nodes, size = parts[:0], nodes[:0], 0
		}
		pending = append(pending, reversed(splitPath(n.link))...)
	}
	return strings.Join(parts, "/"), nil
}

func reversed(s []string) []string {
	slices.Reverse(s)
	return s
}

// resolveParent is rootFS.resolveParent over the tree.
func (t *tree) resolveParent(rel string) (string, error) {
	return resolveParentWith(rel, t.resolve)
}

// mkdirAll is rootFS.mkdirAll: missing directories are made with mode 0755,
// owned by root.
func (t *tree) mkdirAll(rel string) (string, error) {
	res, err := t.resolve(rel, true)
	if err != nil {
		return "", err
	}
	cur := t.root
	parts := splitPath(res)
	for i, part := range parts {
		next, ok := cur.children[part]
		if !ok {
			next = newDir(0o755, 0, 0)
			cur.children[part] = next
		} else if !next.isDir() {
			return "", fmt.Errorf("/%s: %w", strings.Join(parts[:i+1], "/"), syscall.ENOTDIR)
		}
		cur = next
	}
	return res, nil
}

// prepareEntry is rootFS.prepareEntry: it makes the parents of rel and
// removes whatever is at rel, except a directory when keepDir is set. It
// returns the resolved path and the parent directory.
func (t *tree) prepareEntry(rel string, keepDir bool) (string, *inode, error) {
	dir, base := path.Split(rel)
	pdir, err := t.mkdirAll(dir)
	if err != nil {
		return "", nil, err
	}
	parent, err := t.lookup(pdir)
	if err != nil {
		return "", nil, err
	}
	res := base
	if pdir != "" {
		res = pdir + "/" + base
	}
	if len(res) > squashfs.MaxPathLen {
		return "", nil, fmt.Errorf("%s resolves to a path of %d bytes, longer than %d: %w", tarsafe.Quote(rel), len(res), squashfs.MaxPathLen, squashfs.ErrLimit)
	}
	if old, ok := parent.children[base]; ok && !(keepDir && old.isDir()) {
		delete(parent.children, base)
	}
	return res, parent, nil
}

// put replaces the entry at rel (resolved inside the root) with n.
func (t *tree) put(rel string, n *inode) (string, error) {
	res, parent, err := t.prepareEntry(rel, false)
	if err != nil {
		return "", err
	}
	parent.children[path.Base(res)] = n
	return res, nil
}

// remove deletes the entry at the resolved path res and all below it; a
// missing entry is no error.
func (t *tree) remove(res string) {
	if res == "" {
		return
	}
	parent, err := t.lookup(parentRel(res))
	if err != nil || !parent.isDir() {
		return
	}
	delete(parent.children, path.Base(res))
}

// walk calls fn for every entry below the root, parents before children,
// names sorted bytewise, so the same tree always gives the same order.
func (t *tree) walk(fn func(rel string, n *inode) error) error {
	return walkDir(t.root, "", fn)
}

func walkDir(d *inode, rel string, fn func(string, *inode) error) error {
	names := make([]string, 0, len(d.children))
	for name := range d.children {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		child := d.children[name]
		p := name
		if rel != "" {
			p = rel + "/" + name
		}
		if err := fn(p, child); err != nil {
			return err
		}
		if child.isDir() {
			if err := walkDir(child, p, fn); err != nil {
				return err
			}
		}
	}
	return nil
}
