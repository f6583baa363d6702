package doctor

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"strings"
)

// squashfsAlgos are the squashfs compressors, with the kernel option and the
// library that decodes each.
var squashfsAlgos = []struct{ name, kconfig, lib string }{
	{"gzip", "CONFIG_SQUASHFS_ZLIB", "libz."},
	{"xz", "CONFIG_SQUASHFS_XZ", "liblzma."},
	{"lzo", "CONFIG_SQUASHFS_LZO", "liblzo2."},
	{"lz4", "CONFIG_SQUASHFS_LZ4", "liblz4."},
	{"zstd", "CONFIG_SQUASHFS_ZSTD", "libzstd."},
}

// kernelConfig returns the running kernel's build configuration: /proc/config.gz,
// else /boot/config-RELEASE; "" when neither can be read.
func (d *doctor) kernelConfig() (string, string) {
	if b, err := d.p.ReadFile("/proc/config.gz"); err == nil {
		if zr, err := gzip.NewReader(bytes.NewReader(b)); err == nil {
			if cfg, err := io.ReadAll(io.LimitReader(zr, 16<<20)); err == nil {
				return string(cfg), "/proc/config.gz"
			}
		}
	}
	rel, err := d.p.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "", ""
	}
	p := "/boot/config-" + strings.TrimSpace(string(rel))
	if b, err := d.p.ReadFile(p); err == nil {
		return string(b), p
	}
	return "", ""
}

// squashfsCompression reports which squashfs compressors this host can mount:
// the kernel's (its config) and squashfuse's (the libraries it links). SIFs are
// made with gzip by default, which every reader decodes; zstd packs faster and
// smaller but only where every node that runs the SIF reads it.
func (d *doctor) squashfsCompression(ctx context.Context) Check {
	c := Check{Name: "squashfs compression"}
	var parts []string
	kernel := map[string]bool{}
	if cfg, from := d.kernelConfig(); cfg != "" {
		var algos []string
		for _, a := range squashfsAlgos {
			if strings.Contains(cfg, "\n"+a.kconfig+"=y") || strings.HasPrefix(cfg, a.kconfig+"=y") {
				kernel[a.name] = true
				algos = append(algos, a.name)
			}
		}
		parts = append(parts, "kernel ("+from+"): "+listOrNone(algos))
	} else {
		parts = append(parts, "kernel: config not readable (/proc/config.gz, /boot/config-*)")
	}
	fuse := map[string]bool{}
	if bin, err := d.p.LookPath("squashfuse"); err == nil {
		if out, err := d.run(ctx, "ldd", bin); err == nil {
			var algos []string
			for _, a := range squashfsAlgos {
				if strings.Contains(out, a.lib) {
					fuse[a.name] = true
					algos = append(algos, a.name)
				}
			}
			parts = append(parts, "squashfuse: "+listOrNone(algos))
		} else {
			parts = append(parts, "squashfuse: libraries unknown (ldd failed)")
		}
	} else {
		parts = append(parts, "squashfuse: not installed")
	}
	c.Status, c.Detail = OK, strings.Join(parts, "; ")
	switch {
	case len(kernel) == 0 && len(fuse) == 0:
		c.Status = Warn
		c.Fix = "keep the default --compression gzip, which every squashfs reader decodes"
	case kernel["zstd"] || fuse["zstd"]:
		c.Fix = "this host reads zstd: --compression zstd (or compression: zstd in the site config) packs faster and smaller, if every node that runs the SIFs reads it too; SingularityCE 3.x does not"
	default:
		c.Fix = "this host cannot mount zstd SIFs: keep the default gzip"
	}
	return c
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, " ")
}
