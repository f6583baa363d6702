package sif

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sylabs/sif/v2/pkg/sif"

	"github.com/scivision-hpc/scv-hpc/internal/units"
)

// Descriptor describes one data object of a SIF file.
type Descriptor struct {
	ID        uint32 `json:"id"`
	Type      string `json:"type"`
	Name      string `json:"name,omitempty"`
	Offset    int64  `json:"offset"`
	Size      int64  `json:"size"`
	FS        string `json:"fs,omitempty"`        // partitions only
	Partition string `json:"partition,omitempty"` // partitions only
	Arch      string `json:"arch,omitempty"`      // partitions only
}

// Config is the part of an image's runtime config that matters to a user.
type Config struct {
	Env        []string          `json:"env,omitempty"`
	Entrypoint []string          `json:"entrypoint,omitempty"`
	Cmd        []string          `json:"cmd,omitempty"`
	WorkingDir string            `json:"working_dir,omitempty"`
	User       string            `json:"user,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
}

// Info is what Inspect finds in a SIF file. It marshals to JSON for --json.
type Info struct {
	Path        string       `json:"path"`
	Size        int64        `json:"size"`
	ID          string       `json:"id"`
	Arch        string       `json:"arch"`
	Descriptors []Descriptor `json:"descriptors"`
	// PrimaryOffset and PrimarySize locate the squashfs root file system.
	PrimaryOffset int64       `json:"primary_offset"`
	PrimarySize   int64       `json:"primary_size"`
	Provenance    *Provenance `json:"provenance,omitempty"`
	Config        *Config     `json:"config,omitempty"`
	// Runscript is /.singularity.d/runscript, set by ReadRunscript only;
	// RunscriptFrom says whether it was read from the image ("squashfs") or
	// rebuilt from its config ("config", when unsquashfs is not available).
	Runscript     string `json:"runscript,omitempty"`
	RunscriptFrom string `json:"runscript_from,omitempty"`
}

// Inspect reads the descriptors and metadata of the SIF file at path. A file
// that is not a SIF, or one without a squashfs primary partition, gives an
// error naming the file.
func Inspect(path string) (*Info, error) {
	f, done, err := loadPath(path)
	if err != nil {
		return nil, err
	}
	defer done()
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}

	info := &Info{Path: path, Size: st.Size(), ID: f.ID(), Arch: f.PrimaryArch()}
	descs, err := f.GetDescriptors()
	if err != nil {
		return nil, fmt.Errorf("%s: read descriptors: %w", path, err)
	}
	for _, d := range descs {
		info.Descriptors = append(info.Descriptors, describe(d))
		if d.DataType() != sif.DataGenericJSON {
			continue
		}
		data, err := d.GetData()
		if err != nil {
			return nil, fmt.Errorf("%s: read descriptor %d (%s): %w", path, d.ID(), d.Name(), err)
		}
		switch d.Name() {
		case DescProvenance:
			var p Provenance
			if err := json.Unmarshal(data, &p); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", path, DescProvenance, err)
			}
			info.Provenance = &p
		case DescOCIConfig:
			var c v1.Config
			if err := json.Unmarshal(data, &c); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", path, DescOCIConfig, err)
			}
			info.Config = &Config{Env: c.Env, Entrypoint: c.Entrypoint, Cmd: c.Cmd,
				WorkingDir: c.WorkingDir, User: c.User, Labels: c.Labels}
		}
	}
	prim, err := primaryDescriptor(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	info.PrimaryOffset, info.PrimarySize = prim.Offset(), prim.Size()
	return info, nil
}

// ReadRunscript fills Runscript and RunscriptFrom, which Inspect leaves empty (reading
// the runscript runs unsquashfs): from the image's squashfs, or, when that cannot be
// read (no unsquashfs), rebuilt from the config. An image with neither has none.
func (i *Info) ReadRunscript(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if rs, err := catFile(ctx, i.Path, i.PrimaryOffset, ".singularity.d/runscript"); err == nil {
		i.Runscript, i.RunscriptFrom = string(rs), "squashfs"
	} else if i.Config != nil {
		i.Runscript = Runscript(v1.Config{Entrypoint: i.Config.Entrypoint, Cmd: i.Config.Cmd})
		i.RunscriptFrom = "config"
	}
}

func describe(d sif.Descriptor) Descriptor {
	out := Descriptor{ID: d.ID(), Type: d.DataType().String(), Name: d.Name(), Offset: d.Offset(), Size: d.Size()}
	if d.DataType() == sif.DataPartition {
		if fs, pt, arch, err := d.PartitionMetadata(); err == nil {
			out.FS, out.Partition, out.Arch = fs.String(), pt.String(), arch
		}
	}
	return out
}

// WriteText prints the information for people: the provenance, the run
// configuration, the descriptors and the runscript.
func (i *Info) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	ew.printf("SIF:        %s (%s)\n", i.Path, units.Bytes(i.Size))
	ew.printf("Arch:       %s\n", i.Arch)
	if p := i.Provenance; p != nil {
		ew.printf("Reference:  %s\n", p.Ref)
		ew.printf("Digest:     %s\n", p.Digest)
		ew.printf("Platform:   %s\n", p.Platform)
		ew.printf("Built by:   %s\n", p.Tool)
	}
	if c := i.Config; c != nil {
		if len(c.Entrypoint) > 0 {
			ew.printf("Entrypoint: %s\n", quoteArgs(c.Entrypoint))
		}
		if len(c.Cmd) > 0 {
			ew.printf("Cmd:        %s\n", quoteArgs(c.Cmd))
		}
		if c.WorkingDir != "" {
			ew.printf("WorkingDir: %s\n", c.WorkingDir)
		}
		if c.User != "" {
			ew.printf("User:       %s\n", c.User)
		}
		if len(c.Env) > 0 {
			ew.printf("Env:\n")
			for _, e := range c.Env {
				ew.printf("  %s\n", e)
			}
		}
		if len(c.Labels) > 0 {
			ew.printf("Labels:\n")
			keys := make([]string, 0, len(c.Labels))
			for k := range c.Labels {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				ew.printf("  %s=%s\n", k, c.Labels[k])
			}
		}
	}
	ew.printf("Descriptors:\n")
	tw := tabwriter.NewWriter(ew, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  ID\tTYPE\tNAME\tOFFSET\tSIZE\tFS\tPARTITION\tARCH\n")
	for _, d := range i.Descriptors {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", d.ID, d.Type, dash(d.Name), d.Offset, d.Size, dash(d.FS), dash(d.Partition), dash(d.Arch))
	}
	tw.Flush()
	if i.Runscript != "" {
		ew.printf("Runscript (from %s):\n", i.RunscriptFrom)
		for _, l := range strings.Split(strings.TrimRight(i.Runscript, "\n"), "\n") {
			ew.printf("  %s\n", l)
		}
	}
	return ew.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = fmt.Sprintf("%q", a)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
