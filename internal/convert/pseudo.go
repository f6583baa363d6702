package convert

import (
	"archive/tar"
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// runningAsRoot reports whether the conversion can keep owners and make
// device nodes itself. A variable so tests can run the unprivileged path.
var runningAsRoot = func() bool { return os.Geteuid() == 0 }

// owner is what an unprivileged conversion cannot put on disk: the owner
// and exact mode of an entry, or a device node to create.
type owner struct {
	uid, gid     int
	mode         uint32 // permission bits with set-id and sticky bits
	dev          byte   // 0, or 'c' / 'b' for a device node to create
	major, minor int64
}

// record remembers hdr's owner and mode for the entry at res when the
// conversion runs without root. As root they are on disk already.
func (f *flattener) record(res string, hdr *tar.Header) {
	if f.isRoot {
		return
	}
	o := owner{uid: hdr.Uid, gid: hdr.Gid, mode: uint32(hdr.Mode & 0o7777)}
	switch hdr.Typeflag {
	case tar.TypeChar:
		o.dev, o.major, o.minor = 'c', hdr.Devmajor, hdr.Devminor
	case tar.TypeBlock:
		o.dev, o.major, o.minor = 'b', hdr.Devmajor, hdr.Devminor
	case tar.TypeSymlink:
		o.mode = 0o777
	}
	f.owners[res] = o
}

// writePseudo writes the mksquashfs pseudo file of an unprivileged
// conversion: every entry of the root file system gets the owner and mode
// its layer gave it ("m"), entries the conversion made itself (the
// /.singularity.d files, implicit parents) belong to root, and device nodes
// are created ("c", "b"). The same tree gives the same file.
func (f *flattener) writePseudo(path string) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(out)
	err = filepath.WalkDir(f.fs.root, func(p string, d fs.DirEntry, werr error) error {
		if werr != nil {
			return werr
		}
		if p == f.fs.root {
			return nil // the root: -root-mode/-root-uid/-root-gid
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, f.fs.root+string(filepath.Separator)))
		name, ok := pseudoName(rel)
		if !ok {
			f.log.Warn().Str("path", "/"+rel).Msg("name cannot be written to a mksquashfs pseudo file: it keeps the converting user as owner")
			return nil
		}
		o, known := f.owners[rel]
		if !known || o.dev != 0 {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			o = owner{mode: uint32(fi.Mode().Perm())}
			if fi.Mode()&fs.ModeSymlink != 0 {
				o.mode = 0o777
			}
		}
		_, err := fmt.Fprintf(w, "%s m %o %d %d\n", name, o.mode, o.uid, o.gid)
		return err
	})
	if err == nil {
		err = f.writeDevices(w)
	}
	if err == nil {
		err = w.Flush()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeDevices adds the device nodes the layers asked for, unless a later
// entry took their place.
func (f *flattener) writeDevices(w *bufio.Writer) error {
	var devs []string
	for rel, o := range f.owners {
		if o.dev != 0 {
			devs = append(devs, rel)
		}
	}
	sort.Strings(devs)
	for _, rel := range devs {
		if _, err := os.Lstat(f.fs.host(rel)); err == nil {
			continue
		}
		name, ok := pseudoName(rel)
		if !ok {
			continue
		}
		o := f.owners[rel]
		if _, err := fmt.Fprintf(w, "%s %c %o %d %d %d %d\n", name, o.dev, o.mode, o.uid, o.gid, o.major, o.minor); err != nil {
			return err
		}
	}
	return nil
}

// rootOwner returns the owner and mode of the root directory.
func (f *flattener) rootOwner() owner {
	o, ok := f.owners[""]
	if !ok {
		o = owner{}
	}
	o.mode = uint32(f.dirModes[""])
	return o
}

// pseudoName escapes a path for a pseudo file: spaces, tabs, quotes and
// backslashes are backslash-escaped. A newline cannot be written.
func pseudoName(rel string) (string, bool) {
	if strings.ContainsAny(rel, "\n\r") {
		return "", false
	}
	var b strings.Builder
	for _, c := range rel {
		switch c {
		case ' ', '\t', '\\', '"', '\'':
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String(), true
}
