package cache

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/units"
)

// The text forms of what the cache reports ('cache ls', 'cache verify', 'cache gc',
// 'cache import' without --json).

// StatusUnusedBlob is the status of a layer blob that GCAll removes.
const StatusUnusedBlob Status = "unused-blob"

// WriteList writes the entries as a table (digests shortened, times local), then one
// line about the layer blobs.
func WriteList(w io.Writer, entries []Entry, blobs []BlobInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DIGEST\tSIZE\tPLATFORM\tCREATED\tREFS")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ShortDigest(e.Digest), units.Bytes(e.Size), dash(e.Platform),
			e.Created.Local().Format(time.DateTime), dash(strings.Join(e.Refs, ", ")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var bytes int64
	for _, b := range blobs {
		bytes += b.Size
	}
	_, err := fmt.Fprintf(w, "layer blobs: %d, %s (shared by conversions; cache gc drops unused ones)\n", len(blobs), units.Bytes(bytes))
	return err
}

// WriteVerify writes the results of Verify as a table: status, what (ref, digest or
// path) and detail.
func WriteVerify(w io.Writer, results []VerifyResult) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tDIGEST/REF\tDETAIL")
	for _, r := range results {
		what := r.Digest
		if r.Ref != "" {
			what = r.Ref
		}
		if what == "" {
			what = r.Path
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Status, what, dash(r.Detail))
	}
	return tw.Flush()
}

// Problems counts the results that need attention (VerifyResult.Problem).
func Problems(results []VerifyResult) int {
	n := 0
	for _, r := range results {
		if r.Problem() {
			n++
		}
	}
	return n
}

// WriteText writes one line per removed item, then the count and size; a dry run says
// "would remove".
func (r GCReport) WriteText(w io.Writer, dryRun bool) error {
	verb := "removed"
	if dryRun {
		verb = "would remove"
	}
	for _, x := range r.Removed {
		fmt.Fprintf(w, "%s %s %s\n", verb, x.Status, x.Path)
	}
	_, err := fmt.Fprintf(w, "%s %d item(s), %s\n", verb, len(r.Removed), units.Bytes(r.Bytes))
	return err
}

// WriteText writes one line per imported, present and failed entry, the refs set,
// moved and refused.
func (r ImportReport) WriteText(w io.Writer) error {
	for _, d := range r.Imported {
		fmt.Fprintf(w, "imported %s\n", d)
	}
	for _, d := range r.Present {
		fmt.Fprintf(w, "present  %s\n", d)
	}
	for _, f := range r.Failed {
		fmt.Fprintf(w, "FAILED   %s: %s\n", f.Digest, f.Err)
	}
	if len(r.Refs) > 0 {
		fmt.Fprintf(w, "refs     %s\n", strings.Join(r.Refs, ", "))
	}
	for _, m := range r.Moved {
		fmt.Fprintf(w, "moved    %s: %s -> %s\n", m.Ref, m.From, m.To)
	}
	for _, f := range r.Refused {
		fmt.Fprintf(w, "REFUSED  %s -> %s: %s\n", f.Ref, f.Digest, f.Reason)
	}
	return nil
}

// GCAll is GC, then GCBlobs with blobMaxAge: the unused layer blobs are listed in the
// report too (StatusUnusedBlob), their sizes counted.
func (c *Cache) GCAll(ctx context.Context, opts GCOptions, blobMaxAge time.Duration) (GCReport, error) {
	rep, err := c.GC(ctx, opts)
	if err != nil {
		return rep, err
	}
	blobs, err := c.GCBlobs(blobMaxAge, opts.DryRun)
	if err != nil {
		return rep, err
	}
	for _, b := range blobs {
		p, _ := c.BlobPath(b.Digest)
		rep.Removed = append(rep.Removed, VerifyResult{Status: StatusUnusedBlob, Digest: b.Digest, Path: p,
			Detail: "layer blob unused since " + b.Used.Format(time.DateTime)})
		rep.Bytes += b.Size
	}
	return rep, nil
}

// ShortDigest shortens "sha256:HEX" to its first 12 hex digits.
func ShortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}

// dash shows an empty table cell as "-".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
