package convert

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The streaming path is checked against the tree path: for every image of the
// flatten, confinement and fuzz tests, the tree the layers make on disk (as
// root, owners and modes are real there) and the tar stream that the
// streaming path pipes into the packer must describe the same files, and
// when the tree path refuses an image, so must the streaming path.

// diskListing describes the tree under root, one line per entry.
func diskListing(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	byInode := map[uint64][]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		kind, extra := "", ""
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			kind = "d"
		case syscall.S_IFREG:
			kind = "-"
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			extra = fmt.Sprintf("%x", sha256.Sum256(b))
			byInode[st.Ino] = append(byInode[st.Ino], rel)
		case syscall.S_IFLNK:
			kind = "l"
			extra, _ = os.Readlink(p)
		case syscall.S_IFCHR:
			kind, extra = "c", fmt.Sprint(st.Rdev>>8&0xfff, ",", st.Rdev&0xff)
		case syscall.S_IFBLK:
			kind, extra = "b", fmt.Sprint(st.Rdev>>8&0xfff, ",", st.Rdev&0xff)
		case syscall.S_IFIFO:
			kind = "p"
		}
		mode := st.Mode & 0o7777
		if kind == "l" {
			mode = 0o777
		}
		out[rel] = fmt.Sprintf("%s %o %d:%d %s", kind, mode, st.Uid, st.Gid, extra)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, names := range byInode {
		sort.Strings(names)
		for _, n := range names {
			out[n] += " links=" + strings.Join(names, ",")
		}
	}
	return out
}

// streamListing merges img's layers and /.singularity.d-less tree as the
// streaming path does, writes the tar stream, and describes what it holds.
func streamListing(t testing.TB, img v1.Image) (map[string]string, error) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	m, spools, err := mergeLayers(t.Context(), layers, 2, t.TempDir(), testLogger(t))
	if err != nil {
		return nil, err
	}
	defer closeSpools(spools)
	var buf bytes.Buffer
	if _, err := writeTar(t.Context(), &buf, m.t, layers, spools, true, nil); err != nil {
		t.Fatalf("write tar: %v", err)
	}
	// The single pass, where its guess holds, must write the same stream.
	var one bytes.Buffer
	w := newTarWriter(&one, nil)
	m1, spools1, written, err := onePass(t.Context(), w, layers, "", singularityD{}, testLogger(t))
	if err != nil {
		t.Fatalf("single pass fails where the two passes do not: %v", err)
	}
	closeSpools(spools1)
	w.index(m1.t)
	if guessHolds(m1.t, w, written) {
		if err := w.rest(t.Context(), m1.t, true); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(one.Bytes(), buf.Bytes()) {
			t.Errorf("the single pass wrote another stream than the two passes")
		}
	}
	out := map[string]string{}
	groups := map[string][]string{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rel := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		kind, extra := "", ""
		switch h.Typeflag {
		case tar.TypeDir:
			kind = "d"
		case tar.TypeReg:
			kind = "-"
			b, _ := io.ReadAll(tr)
			extra = fmt.Sprintf("%x", sha256.Sum256(b))
			groups[rel] = append(groups[rel], rel)
		case tar.TypeLink:
			first := out[h.Linkname]
			if first == "" {
				t.Fatalf("hard link %s to %s, which the stream has not written yet", h.Name, h.Linkname)
			}
			out[rel] = first
			groups[h.Linkname] = append(groups[h.Linkname], rel)
			continue
		case tar.TypeSymlink:
			kind, extra = "l", h.Linkname
		case tar.TypeChar:
			kind, extra = "c", fmt.Sprint(h.Devmajor, ",", h.Devminor)
		case tar.TypeBlock:
			kind, extra = "b", fmt.Sprint(h.Devmajor, ",", h.Devminor)
		case tar.TypeFifo:
			kind = "p"
		}
		if _, dup := out[rel]; dup {
			t.Fatalf("the stream holds %q twice", rel)
		}
		out[rel] = fmt.Sprintf("%s %o %d:%d %s", kind, h.Mode, h.Uid, h.Gid, extra)
	}
	for _, names := range groups {
		sort.Strings(names)
		for _, n := range names {
			out[n] += " links=" + strings.Join(names, ",")
		}
	}
	return out, nil
}

// assertStreamAgrees fails unless the streaming path gives the tree that the
// tree path made under root (treeErr nil), or fails as well (treeErr set).
// Only as root is the disk tree exact (owners, modes, devices).
func assertStreamAgrees(t testing.TB, img v1.Image, root string, treeErr error) {
	t.Helper()
	got, err := streamListing(t, img)
	if treeErr != nil {
		if err == nil {
			t.Errorf("the tree path fails (%v), the streaming path does not", treeErr)
		}
		return
	}
	if err != nil {
		t.Errorf("the streaming path fails: %v (the tree path does not)", err)
		return
	}
	if !isRoot() {
		return
	}
	want := diskListing(t, root)
	for p, w := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("/%s: in the tree (%s), not in the stream", p, w)
		} else if g != w {
			t.Errorf("/%s: stream %q, tree %q", p, g, w)
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("/%s: in the stream (%s), not in the tree", p, g)
		}
	}
}
