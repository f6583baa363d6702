package cache

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/progress"
	"github.com/scivision-hpc/scv-hpc/internal/tarsafe"
	"github.com/scivision-hpc/scv-hpc/internal/version"
)

// Export writes the entries of digests (nil: all) and the refs pointing at them to w
// as one tar bundle. Every SIF is re-hashed first and a corrupt entry stops the export,
// so a bundle never carries bad data; the copy is hashed again as it is written.
func (c *Cache) Export(ctx context.Context, w io.Writer, digests []string) error {
	if digests == nil {
		ents, err := c.List()
		if err != nil {
			return err
		}
		for _, e := range ents {
			digests = append(digests, e.Digest)
		}
	}
	ix := BundleIndex{Format: BundleFormat, Tool: "scv-hpc " + version.String(), Created: time.Now().UTC().Truncate(time.Second), Refs: map[string]string{}}
	metas := map[string][]byte{}
	digests = dedupe(digests)
	rep := c.reporter("export cache")
	defer rep.Done()
	var total int64
	for _, d := range digests {
		if _, m, err := c.Lookup(d); err == nil {
			total += 2 * m.Size // hashed, then copied
		}
	}
	rep.SetTotal(total)
	for _, d := range digests {
		e, mb, err := c.exportEntry(ctx, d, rep)
		if err != nil {
			return err
		}
		ix.Entries = append(ix.Entries, e)
		metas[d] = mb
	}
	refs, err := c.Refs()
	if err != nil {
		return err
	}
	for ref, d := range refs {
		if metas[d] != nil {
			ix.Refs[ref] = d
		}
	}
	ib, err := json.MarshalIndent(ix, "", "  ")
	if err != nil {
		return fmt.Errorf("cache export: %w", err)
	}
	tw := tar.NewWriter(w)
	if err := writeMember(tw, indexName, ix.Created, int64(len(ib)), bytes.NewReader(ib)); err != nil {
		return fmt.Errorf("cache export: %w", err)
	}
	for _, e := range ix.Entries {
		if err := writeMember(tw, e.Meta.Name, ix.Created, e.Meta.Size, bytes.NewReader(metas[e.Digest])); err != nil {
			return fmt.Errorf("cache export %s: %w", e.Digest, err)
		}
		if err := c.exportSIF(ctx, tw, e, ix.Created, rep); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("cache export: %w", err)
	}
	return nil
}

// exportEntry checks one entry and describes its files.
func (c *Cache) exportEntry(ctx context.Context, digest string, rep progress.Reporter) (BundleEntry, []byte, error) {
	p, m, err := c.Lookup(digest)
	if err != nil {
		return BundleEntry{}, nil, fmt.Errorf("cache export: %w", err)
	}
	hex, _ := ParseDigest(digest)
	mb, err := readSmall(c.metaPath(hex), maxMetaSize)
	if err != nil {
		return BundleEntry{}, nil, fmt.Errorf("cache export %s: %w", digest, err)
	}
	f, _, err := openRegular(p)
	if err != nil {
		return BundleEntry{}, nil, fmt.Errorf("cache export %s: %w", digest, err)
	}
	defer f.Close()
	sum, size, err := hashReader(countingReader{ctxReader{ctx, f}, rep})
	if err != nil {
		return BundleEntry{}, nil, fmt.Errorf("cache export %s: %w", digest, err)
	}
	if sum != m.SIFSHA256 || size != m.Size {
		return BundleEntry{}, nil, fmt.Errorf("cache export: %w: %s: the SIF does not match its checksum", ErrCorrupt, digest)
	}
	msum, msize, _ := hashReader(bytes.NewReader(mb))
	mn, sn := bundleNames(hex)
	return BundleEntry{
		Digest: digest,
		Meta:   BundleFile{Name: mn, Size: msize, SHA256: msum},
		SIF:    BundleFile{Name: sn, Size: size, SHA256: sum},
	}, mb, nil
}

// exportSIF copies one SIF into the tar, checking it did not change since indexed.
func (c *Cache) exportSIF(ctx context.Context, tw *tar.Writer, e BundleEntry, mtime time.Time, rep progress.Reporter) error {
	hex, _ := ParseDigest(e.Digest)
	f, _, err := openRegular(c.sifPath(hex))
	if err != nil {
		return fmt.Errorf("cache export %s: %w", e.Digest, err)
	}
	defer f.Close()
	h := sha256.New()
	if err := writeMember(tw, e.SIF.Name, mtime, e.SIF.Size, io.TeeReader(countingReader{ctxReader{ctx, f}, rep}, h)); err != nil {
		return fmt.Errorf("cache export %s: %w", e.Digest, err)
	}
	if got := hex64(h); got != e.SIF.SHA256 {
		return fmt.Errorf("cache export %s: the SIF changed while exported", e.Digest)
	}
	return nil
}

// writeMember writes one regular file of exactly size bytes from r.
func writeMember(tw *tar.Writer, name string, mtime time.Time, size int64, r io.Reader) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: mtime, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.CopyN(tw, r, size)
	if err != nil {
		return fmt.Errorf("%s: wrote %d of %d bytes: %w", name, n, size, err)
	}
	return nil
}

// Import reads a bundle made by Export. Every SIF is checked against the index's
// checksum, opened as a SIF and its own provenance compared with the digest it is filed
// under before it is committed through the normal atomic path, so a corrupt bundle
// leaves nothing broken: good entries are imported, bad ones are listed in the report
// and in the error (ErrBadBundle), which names each of them. Entries the cache already
// has are kept and their data skipped.
//
// Refs of the bundle are taken as claims, checked against what the SIF itself records
// (its scv-provenance.json, read from the cached SIF, and the entry's metadata): a ref
// that disagrees, or that would move a ref of this cache to another digest without
// opts.Force, is not set and is listed in ImportReport.Refused; the error then matches
// ErrRefRefused.
func (c *Cache) Import(ctx context.Context, r io.Reader, opts ImportOptions) (ImportReport, error) {
	var rep ImportReport
	tr := tar.NewReader(r)
	hdr, err := tr.Next()
	if err != nil {
		return rep, fmt.Errorf("%w: not a bundle (no index.json): %v", ErrBadBundle, err)
	}
	if hdr.Name != indexName || hdr.Typeflag != tar.TypeReg || hdr.Size > maxIndexSize {
		return rep, fmt.Errorf("%w: the first member is %q, want a regular index.json", ErrBadBundle, hdr.Name)
	}
	ib, err := io.ReadAll(io.LimitReader(tr, maxIndexSize))
	if err != nil {
		return rep, fmt.Errorf("%w: read index.json: %v", ErrBadBundle, err)
	}
	ix, err := ParseBundleIndex(ib)
	if err != nil {
		return rep, err
	}
	byName := map[string]BundleEntry{}
	var total int64
	for _, e := range ix.Entries {
		byName[e.Meta.Name], byName[e.SIF.Name] = e, e
		total += e.SIF.Size
	}
	prog := c.reporter("import bundle")
	defer prog.Done()
	prog.SetTotal(total)
	metas := map[string]*Meta{}
	done := map[string]bool{}
	fail := func(d string, err error) {
		if !done[d] {
			done[d] = true
			rep.Failed = append(rep.Failed, ImportFailure{Digest: d, Err: err.Error()})
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("cache import: %w", context.Cause(ctx))
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			rep.sort()
			msg := fmt.Sprintf("%d imported before that", len(rep.Imported))
			if ferr := rep.failedErr(); ferr != nil {
				msg += "; " + strings.TrimPrefix(ferr.Error(), ErrBadBundle.Error()+": ")
			}
			return rep, fmt.Errorf("%w: %v (truncated?); %s", ErrBadBundle, err, msg)
		}
		e, ok := byName[hdr.Name]
		if !ok || done[e.Digest] {
			continue // not in the index: ignored, never used as a path
		}
		if hdr.Typeflag != tar.TypeReg {
			fail(e.Digest, fmt.Errorf("%s is not a regular file", hdr.Name))
			continue
		}
		if err := tarsafe.Check(hdr); err != nil { // its holes would be read as zeros
			fail(e.Digest, err)
			continue
		}
		if hdr.Name == e.Meta.Name {
			b, err := io.ReadAll(io.LimitReader(tr, maxMetaSize+1))
			if err != nil {
				return rep, fmt.Errorf("%w: %s: %v", ErrBadBundle, hdr.Name, err)
			}
			m, err := parseBundleMeta(e, b)
			if err != nil {
				fail(e.Digest, err)
				continue
			}
			metas[e.Digest] = m
			continue
		}
		m := metas[e.Digest]
		if m == nil {
			fail(e.Digest, errors.New("its metadata is missing from the bundle, or comes after the SIF"))
			continue
		}
		built, err := c.importSIF(ctx, e, m, countingReader{tr, prog})
		switch {
		case err != nil && (ctx.Err() != nil || environmentErr(err)):
			rep.sort()
			return rep, err // the cache's fault, not the bundle's: stop here
		case err != nil:
			fail(e.Digest, err)
		case built:
			done[e.Digest] = true
			rep.Imported = append(rep.Imported, e.Digest)
		default:
			done[e.Digest] = true
			rep.Present = append(rep.Present, e.Digest)
		}
	}
	for _, e := range ix.Entries {
		if !done[e.Digest] {
			fail(e.Digest, errors.New("its files are missing from the bundle"))
		}
	}
	if err := c.importRefs(ix, &rep, opts); err != nil {
		return rep, err
	}
	rep.sort()
	return rep, rep.err()
}

// importSIF commits one SIF streamed from the bundle.
func (c *Cache) importSIF(ctx context.Context, e BundleEntry, m *Meta, r io.Reader) (bool, error) {
	var checkErr error // what was wrong with the bundle's data, said plainly
	_, _, built, err := c.Commit(ctx, e.Digest, func(ctx context.Context, tmp string) (*Meta, error) {
		f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(ctxReader{ctx, r}, e.SIF.Size+1))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			if !environmentErr(err) {
				checkErr = fmt.Errorf("the bundle ends inside the SIF (truncated?): %w", err)
			}
			return nil, fmt.Errorf("copy the SIF: %w", err)
		}
		if n != e.SIF.Size || hex64(h) != e.SIF.SHA256 {
			checkErr = fmt.Errorf("SIF checksum mismatch (%d bytes, sha256 %s; index says %d bytes, %s)",
				n, hex64(h), e.SIF.Size, e.SIF.SHA256)
			return nil, checkErr
		}
		if err := checkSIF(tmp, n); err != nil {
			checkErr = err
			return nil, err
		}
		p, err := readProvenance(tmp)
		if err == nil {
			err = checkProvenance(p, e.Digest, m)
		}
		if err != nil {
			checkErr = err
			return nil, err
		}
		mc := *m
		return &mc, nil
	})
	if err != nil && checkErr != nil {
		return false, checkErr
	}
	return built, err
}

func hex64(h interface{ Sum([]byte) []byte }) string { return hex.EncodeToString(h.Sum(nil)) }

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// environmentErr reports errors of the cache's file system (full, read-only, not
// permitted), which say nothing about the bundle.
func environmentErr(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) ||
		errors.Is(err, syscall.EROFS) || errors.Is(err, os.ErrPermission)
}
