package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/progress"
)

// Status is the verdict of Verify on one file of the cache.
type Status string

// Verify verdicts.
const (
	StatusOK          Status = "ok"           // entry re-hashed and opened as a SIF
	StatusCorrupt     Status = "corrupt"      // checksum, size, metadata or SIF format wrong
	StatusIncomplete  Status = "incomplete"   // metadata whose SIF is missing
	StatusOrphan      Status = "orphan"       // SIF without metadata, no conversion running
	StatusInProgress  Status = "in-progress"  // a live conversion holds the lock
	StatusStaleLock   Status = "stale-lock"   // lock of a dead or silent owner
	StatusStaleTemp   Status = "stale-tmp"    // temp file no live conversion owns
	StatusDanglingRef Status = "dangling-ref" // ref to a missing entry
	StatusBadRef      Status = "bad-ref"      // refs/ file that is a symlink, FIFO, too large or not a digest
	StatusBadFile     Status = "bad-file"     // symlink, FIFO or device where the cache keeps regular files
)

// VerifyResult is one finding of Verify.
type VerifyResult struct {
	Status Status `json:"status"`
	// Digest is the entry concerned, when there is one.
	Digest string `json:"digest,omitempty"`
	// Ref is the ref concerned (dangling refs).
	Ref string `json:"ref,omitempty"`
	// Path is the file concerned.
	Path string `json:"path"`
	// Detail says what is wrong.
	Detail string `json:"detail,omitempty"`
}

// Problem reports whether the result needs attention (GC or Remove).
func (r VerifyResult) Problem() bool { return r.Status != StatusOK && r.Status != StatusInProgress }

// Verify re-hashes every entry's SIF against its metadata and opens it as a SIF, and
// reports orphan SIFs, incomplete entries, stale locks, stale temp files and dangling
// refs. It writes nothing (a read-only cache can be verified); GC repairs.
func (c *Cache) Verify(ctx context.Context) ([]VerifyResult, error) {
	return c.scan(ctx, true)
}

// scan is Verify; with deep false it does not read the SIFs (only their size).
func (c *Cache) scan(ctx context.Context, deep bool) ([]VerifyResult, error) {
	var out []VerifyResult
	names, err := c.listDir(c.sifDir())
	if err != nil {
		return nil, fmt.Errorf("cache %s: verify: %w", c.Dir, err)
	}
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
	}
	rep := progress.Reporter(progress.Nop{})
	if deep {
		rep = c.reporter("verify cache")
		defer rep.Done()
		var total int64
		for _, n := range names {
			if hex, ok := strings.CutSuffix(n, ".json"); ok && isHex64(hex) && have[hex+".sif"] {
				total += fileSize(c.sifPath(hex))
			}
		}
		rep.SetTotal(total)
	}
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("cache %s: verify: %w", c.Dir, context.Cause(ctx))
		}
		p := filepath.Join(c.sifDir(), n)
		if strings.HasPrefix(n, ".") {
			if old(p, guardStaleAge) {
				out = append(out, VerifyResult{Status: StatusStaleTemp, Path: p, Detail: "temp file of an interrupted metadata write"})
			}
			continue
		}
		if hex, ok := strings.CutSuffix(n, ".json"); ok && isHex64(hex) {
			out = append(out, c.verifyEntry(ctx, hex, have[hex+".sif"], deep, rep))
			continue
		}
		if hex, ok := strings.CutSuffix(n, ".sif"); ok && isHex64(hex) && !have[hex+".json"] {
			r := VerifyResult{Status: StatusOrphan, Digest: sha256Prefix + hex, Path: p,
				Detail: "SIF without metadata: a conversion stopped before its commit"}
			if _, live := c.lockLive(hex); live {
				r.Status, r.Detail = StatusInProgress, "being committed"
			}
			out = append(out, r)
		}
	}
	out = append(out, c.verifyLocks()...)
	out = append(out, c.verifyTemps()...)
	refs, err := c.verifyRefs()
	if err != nil {
		return out, err
	}
	return append(out, refs...), nil
}

// verifyEntry checks one committed entry.
func (c *Cache) verifyEntry(ctx context.Context, hex string, hasSIF, deep bool, rep progress.Reporter) VerifyResult {
	digest := sha256Prefix + hex
	p := c.sifPath(hex)
	r := VerifyResult{Status: StatusCorrupt, Digest: digest, Path: p}
	m, err := c.readMeta(hex)
	if err != nil {
		r.Path, r.Detail = c.metaPath(hex), err.Error()
		return r
	}
	if !hasSIF {
		r.Status, r.Path, r.Detail = StatusIncomplete, c.metaPath(hex), "metadata without its SIF"
		return r
	}
	if !deep {
		if _, _, err := c.Lookup(digest); err != nil {
			r.Detail = err.Error()
		} else {
			r.Status = StatusOK
		}
		return r
	}
	detail, err := c.sifProblem(ctx, hex, m, rep)
	switch {
	case err != nil:
		r.Detail = "read: " + err.Error()
	case detail != "":
		r.Detail = detail
	default:
		r.Status = StatusOK
	}
	return r
}

// verifyLocks reports held and stale locks and leftover lock temp files.
func (c *Cache) verifyLocks() []VerifyResult {
	var out []VerifyResult
	names, err := c.listDir(c.locksDir())
	if err != nil {
		return []VerifyResult{{Status: StatusBadFile, Path: c.locksDir(), Detail: err.Error()}}
	}
	for _, n := range names {
		p := filepath.Join(c.locksDir(), n)
		if r, bad := badFile(p); bad {
			out = append(out, r)
			continue
		}
		if strings.HasPrefix(n, lockTempPrefix) {
			if old(p, guardStaleAge) {
				out = append(out, VerifyResult{Status: StatusStaleTemp, Path: p, Detail: "temp file of an interrupted lock"})
			}
			continue
		}
		base, isGuard := strings.CutSuffix(n, ".break")
		hex, ok := strings.CutSuffix(strings.TrimPrefix(base, "sha256-"), ".lock")
		if !ok || !isHex64(hex) {
			continue
		}
		age := c.staleAfter()
		if isGuard {
			age = guardStaleAge
		}
		_, li, stale, err := c.lockState(p, age)
		if err != nil {
			continue
		}
		r := VerifyResult{Status: StatusInProgress, Digest: sha256Prefix + hex, Path: p,
			Detail: fmt.Sprintf("held by %s pid %d since %s", li.Host, li.PID, li.Time.Format(time.RFC3339))}
		if stale {
			r.Status = StatusStaleLock
			r.Detail = fmt.Sprintf("owner %s pid %d (since %s) is gone", li.Host, li.PID, li.Time.Format(time.RFC3339))
		}
		out = append(out, r)
	}
	return out
}

// verifyTemps reports temp SIFs that no live conversion owns.
func (c *Cache) verifyTemps() []VerifyResult {
	var out []VerifyResult
	names, err := c.listDir(c.tmpDir())
	if err != nil {
		return []VerifyResult{{Status: StatusBadFile, Path: c.tmpDir(), Detail: err.Error()}}
	}
	for _, n := range names {
		p := filepath.Join(c.tmpDir(), n)
		if tempLive(c, n) {
			out = append(out, VerifyResult{Status: StatusInProgress, Path: p, Detail: "conversion running"})
			continue
		}
		if hex, _, ok := parseTempName(n); ok || old(p, c.staleAfter()) {
			r := VerifyResult{Status: StatusStaleTemp, Path: p, Detail: "left by a conversion that stopped"}
			if ok {
				r.Digest = sha256Prefix + hex
			}
			out = append(out, r)
		}
	}
	return out
}

// parseTempName splits "<hex>.<token>.sif", the name Commit gives its temp SIFs (and
// "<hex>.<token>.sif.sqfs", the squashfs a conversion makes next to it, and
// "<hex>.<token>.sif.blob", a layer blob being downloaded).
func parseTempName(n string) (hex, token string, ok bool) {
	rest, ok := strings.CutSuffix(strings.TrimSuffix(strings.TrimSuffix(n, ".sqfs"), ".blob"), ".sif")
	if !ok {
		return "", "", false
	}
	hex, token, ok = strings.Cut(rest, ".")
	if !ok || !isHex64(hex) || token == "" {
		return "", "", false
	}
	return hex, token, true
}

// tempLive reports whether temp file name belongs to a conversion holding its lock.
func tempLive(c *Cache, name string) bool {
	hex, token, ok := parseTempName(name)
	if !ok {
		return false
	}
	held, live := c.lockLive(hex)
	return live && held == token
}

// badFile reports a file that should be regular (a lock, a lock temp) but is a
// symlink, FIFO, device, socket or directory. It is never opened.
func badFile(path string) (VerifyResult, bool) {
	st, err := os.Lstat(path)
	if err != nil || st.Mode().IsRegular() {
		return VerifyResult{}, false
	}
	return VerifyResult{Status: StatusBadFile, Path: path, Detail: kindOf(st.Mode()) + " where a regular file belongs"}, true
}

// verifyRefs reports refs whose entry is missing and refs/ files that cannot be read.
func (c *Cache) verifyRefs() ([]VerifyResult, error) {
	var out []VerifyResult
	if err := c.ownDir(c.refsDir()); err != nil {
		return []VerifyResult{{Status: StatusBadFile, Path: c.refsDir(), Detail: err.Error()}}, nil
	}
	names, err := readDirNames(c.refsDir())
	if err != nil {
		return nil, fmt.Errorf("cache %s: verify refs: %w", c.Dir, err)
	}
	for _, n := range names {
		p := filepath.Join(c.refsDir(), n)
		ref, ok := unescapeRef(n)
		if !ok {
			if strings.HasPrefix(n, ".") && old(p, guardStaleAge) {
				out = append(out, VerifyResult{Status: StatusStaleTemp, Path: p, Detail: "temp file of an interrupted ref write"})
			}
			continue
		}
		d, err := readRefFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			out = append(out, VerifyResult{Status: StatusBadRef, Ref: ref, Path: p, Detail: badRefDetail(p, err)})
			continue
		}
		hex, _ := ParseDigest(d)
		if _, err := os.Stat(c.metaPath(hex)); errors.Is(err, fs.ErrNotExist) {
			out = append(out, VerifyResult{Status: StatusDanglingRef, Ref: ref, Digest: d, Path: p, Detail: "points to an entry that is not cached"})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Ref < out[j].Ref })
	return out, nil
}

// old reports whether path was last modified more than age ago.
func old(path string, age time.Duration) bool {
	st, err := os.Lstat(path)
	return err == nil && time.Since(st.ModTime()) > age
}

// ctxReader stops a long read when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, context.Cause(r.ctx)
	}
	return r.r.Read(p)
}

// badRefDetail says what is wrong with a refs/ file without quoting its content.
func badRefDetail(path string, err error) string {
	if st, lerr := os.Lstat(path); lerr == nil && !st.Mode().IsRegular() {
		return kindOf(st.Mode()) + ", not a ref file (never followed or read)"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) && !errors.Is(err, ErrBadRef) {
		return "unreadable: " + pe.Err.Error()
	}
	return strings.TrimPrefix(strings.TrimPrefix(err.Error(), ErrBadRef.Error()+": "), path+": ")
}
