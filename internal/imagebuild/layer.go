// Package imagebuild packs files and root file systems into OCI images without Docker,
// deterministically: the same inputs give the same layer and image digests (sorted
// entries, fixed times, no host user names), so model images can be rebuilt and pinned.
package imagebuild

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Epoch is the modification time of every entry and the image creation time.
var Epoch = time.Unix(0, 0).UTC()

// ErrBadPath is returned for an entry path that is empty or leaves the root ("..").
var ErrBadPath = errors.New("bad path in layer")

// File is one entry of a layer. Exactly one of Data/Src (regular file), Link (symlink),
// HardLink or Dir says what it is; a File with none of them is an empty regular file.
type File struct {
	// Path inside the image, e.g. /usr/local/bin/faces.
	Path string
	// Mode holds the permission bits (and setuid/setgid/sticky). Zero means 0644 for
	// files (0755 when copied from an executable host file) and 0755 for directories.
	Mode fs.FileMode
	// Data is the content of a regular file.
	Data []byte
	// Src is a host file whose content is copied when the layer is read.
	Src string
	// Link is the target of a symbolic link.
	Link string
	// HardLink is the path of an earlier entry this one is a hard link to.
	HardLink string
	// Dir makes the entry a directory.
	Dir bool
	// UID and GID own the entry (default 0, root).
	UID, GID int
}

// Layer packs files into a layer (OCI media type, gzip). Entries are sorted by path,
// parent directories are added (0755, root) when not listed, and every time is Epoch.
// Src files are read once, by Layer; the layer is kept compressed in a temporary file
// (see newLayer), so TMPDIR needs room for it.
func Layer(files []File) (v1.Layer, error) {
	entries, err := plan(files)
	if err != nil {
		return nil, err
	}
	return newLayer(func(tw *tar.Writer) error {
		for _, e := range entries {
			if err := writeFile(tw, e); err != nil {
				return err
			}
		}
		return nil
	})
}

// cleanPath turns an image path into a tar entry name: relative, slash-separated, clean.
func cleanPath(p string) (string, error) {
	c := path.Clean("/" + strings.ReplaceAll(p, "\\", "/"))
	if p == "" || c == "/" || strings.Contains("/"+p+"/", "/../") {
		return "", fmt.Errorf("%w: %q", ErrBadPath, p)
	}
	return strings.TrimPrefix(c, "/"), nil
}

// plan validates, normalises and sorts the entries and adds implied parent directories.
func plan(files []File) ([]File, error) {
	byPath := map[string]File{}
	for _, f := range files {
		p, err := cleanPath(f.Path)
		if err != nil {
			return nil, err
		}
		if _, dup := byPath[p]; dup {
			return nil, fmt.Errorf("%w: %q listed twice", ErrBadPath, f.Path)
		}
		kinds := 0
		for _, set := range []bool{f.Data != nil || f.Src != "", f.Link != "", f.HardLink != "", f.Dir} {
			if set {
				kinds++
			}
		}
		if kinds > 1 || (f.Data != nil && f.Src != "") {
			return nil, fmt.Errorf("%w: %q is more than one kind of entry", ErrBadPath, f.Path)
		}
		if f.HardLink != "" {
			if f.HardLink, err = cleanPath(f.HardLink); err != nil {
				return nil, err
			}
		}
		f.Path = p
		byPath[p] = f
	}
	for p := range byPath {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if f, ok := byPath[d]; ok {
				if !f.Dir {
					return nil, fmt.Errorf("%w: %q is inside %q, which is not a directory", ErrBadPath, p, d)
				}
				continue
			}
			byPath[d] = File{Path: d, Dir: true}
		}
	}
	out := make([]File, 0, len(byPath))
	for _, f := range byPath {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	seen := map[string]bool{}
	for _, f := range out {
		seen[f.Path] = true
		if f.HardLink != "" && !seen[f.HardLink] {
			if _, ok := byPath[f.HardLink]; !ok {
				return nil, fmt.Errorf("%w: hard link %q points to %q, which is not in the layer", ErrBadPath, f.Path, f.HardLink)
			}
		}
	}
	return out, nil
}

// writeFile writes one planned entry.
func writeFile(tw *tar.Writer, f File) error {
	h := &tar.Header{Name: f.Path, Uid: f.UID, Gid: f.GID, ModTime: Epoch, Format: tar.FormatPAX}
	mode := f.Mode
	switch {
	case f.Dir:
		h.Typeflag, h.Name = tar.TypeDir, f.Path+"/"
		if mode == 0 {
			mode = 0o755
		}
	case f.Link != "":
		h.Typeflag, h.Linkname = tar.TypeSymlink, f.Link
		mode = 0o777
	case f.HardLink != "":
		h.Typeflag, h.Linkname = tar.TypeLink, f.HardLink
		if mode == 0 {
			mode = 0o644
		}
	default:
		h.Typeflag = tar.TypeReg
		var r io.Reader
		if f.Src != "" {
			src, err := os.Open(f.Src)
			if err != nil {
				return fmt.Errorf("add %s: %w", f.Path, err)
			}
			defer src.Close()
			fi, err := src.Stat()
			if err != nil {
				return fmt.Errorf("add %s: %w", f.Path, err)
			}
			if !fi.Mode().IsRegular() {
				return fmt.Errorf("add %s: %s is not a regular file", f.Path, f.Src)
			}
			if mode == 0 {
				mode = 0o644
				if fi.Mode()&0o111 != 0 {
					mode = 0o755
				}
			}
			h.Size, r = fi.Size(), io.LimitReader(src, fi.Size())
		} else {
			h.Size, r = int64(len(f.Data)), bytes.NewReader(f.Data)
		}
		if mode == 0 {
			mode = 0o644
		}
		h.Mode = tarMode(mode)
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("add %s: %w", f.Path, err)
		}
		n, err := io.Copy(tw, r)
		if err == nil && n != h.Size {
			err = fmt.Errorf("%s changed size while being read", f.Src)
		}
		if err != nil {
			return fmt.Errorf("add %s: %w", f.Path, err)
		}
		return nil
	}
	h.Mode = tarMode(mode)
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("add %s: %w", f.Path, err)
	}
	return nil
}

// tarMode converts permission and special bits to the tar header's mode field. Both
// Go's flags (fs.ModeSetuid, …) and raw Unix bits (0o4755) are understood.
func tarMode(m fs.FileMode) int64 {
	v := int64(m & 0o7777)
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}

// ErrTempFile is returned when the temporary file a layer is packed into cannot be
// made in TMPDIR.
var ErrTempFile = errors.New("layer temp file")

// newLayer runs fill once: the tar it writes is gzipped into an anonymous temporary
// file (created in TMPDIR and unlinked at once) while both streams are hashed, and the
// layer serves that file. So the inputs are read, packed and compressed exactly once,
// however often the layer is read afterwards (digests, WriteLayout, Push). The open file
// keeps the data until the layer is garbage collected or the process exits; nothing is
// left behind on disk either way.
func newLayer(fill func(*tar.Writer) error) (v1.Layer, error) {
	f, err := os.CreateTemp("", "scv-hpc-layer-*.tar.gz")
	if err != nil {
		return nil, fmt.Errorf("build layer: %w in %s: %w", ErrTempFile, os.TempDir(), err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("build layer: %w", err)
	}
	l, err := writeLayer(f, fill)
	if err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

func writeLayer(f *os.File, fill func(*tar.Writer) error) (*fileLayer, error) {
	compressed, uncompressed := sha256.New(), sha256.New()
	bw := bufio.NewWriterSize(f, 1<<16)
	size := &countingWriter{w: io.MultiWriter(bw, compressed)}
	// gzip.BestSpeed with the default header, as go-containerregistry compresses layers.
	gw, err := gzip.NewWriterLevel(size, gzip.BestSpeed)
	if err != nil {
		return nil, fmt.Errorf("build layer: %w", err)
	}
	tw := tar.NewWriter(io.MultiWriter(gw, uncompressed))
	if err := fill(tw); err != nil {
		return nil, fmt.Errorf("build layer: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("build layer: %w", err)
	}
	if err := gw.Close(); err != nil {
		return nil, fmt.Errorf("build layer: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("build layer: %w", err)
	}
	return &fileLayer{
		f:      f,
		size:   size.n,
		digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(compressed.Sum(nil))},
		diffID: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(uncompressed.Sum(nil))},
	}, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// fileLayer is a gzip layer held in an unlinked file whose digests are known. Readers
// use ReadAt, so any number may read it at once.
type fileLayer struct {
	f              *os.File
	size           int64
	digest, diffID v1.Hash
}

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }

func (l *fileLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(io.NewSectionReader(l.f, 0, l.size)), nil
}

func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	return gzip.NewReader(io.NewSectionReader(l.f, 0, l.size))
}
