package convert

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/scivision-hpc/scv-hpc/internal/fsutil"
	"github.com/scivision-hpc/scv-hpc/internal/sif"
)

// envName is what a POSIX shell accepts as a variable name; other names in an
// image's Env cannot be exported by the env script and are skipped.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// sdFile is one file of /.singularity.d (or a bind-mount target) that a
// conversion writes, owned by root.
type sdFile struct {
	name, data string
	mode       uint32
}

// sdLink is a symlink at the root that the conversion adds unless the image
// has that name already.
type sdLink struct{ name, target string }

// singularityD is what a conversion adds to every image, in order: replace a
// /.singularity.d that is not a directory, make dirs, add links, write files.
type singularityD struct {
	dirs  []string
	links []sdLink
	files []sdFile
}

// newSingularityD lists the runtime files Apptainer's OCI conversion puts in
// an image: the base directories and links, /.singularity.d/{actions,env,
// libs}, the runscript from Entrypoint/Cmd, the env script from Env and
// labels.json (labels, from labelsJSON). Both conversion paths write exactly
// these.
func newSingularityD(cfg v1.Config, labels []byte, log zerolog.Logger) singularityD {
	return singularityD{
		dirs: []string{
			".singularity.d/libs", ".singularity.d/actions", ".singularity.d/env",
			"dev", "proc", "root", "var/tmp", "tmp", "etc", "sys", "home",
		},
		links: []sdLink{
			{"singularity", ".singularity.d/runscript"},
			{".run", ".singularity.d/actions/run"},
			{".exec", ".singularity.d/actions/exec"},
			{".test", ".singularity.d/actions/test"},
			{".shell", ".singularity.d/actions/shell"},
			{"environment", ".singularity.d/env/90-environment.sh"},
		},
		files: []sdFile{
			// Bind-mount targets of the runtime.
			{"etc/hosts", "", 0o644},
			{"etc/resolv.conf", "", 0o644},
			{".singularity.d/actions/exec", actionExec, 0o755},
			{".singularity.d/actions/run", actionRun, 0o755},
			{".singularity.d/actions/shell", actionShell, 0o755},
			{".singularity.d/actions/start", actionStart, 0o755},
			{".singularity.d/actions/test", actionTest, 0o755},
			{".singularity.d/env/01-base.sh", envBase, 0o755},
			{".singularity.d/env/10-docker2singularity.sh", envScript(cfg.Env, log), 0o755},
			{".singularity.d/env/90-environment.sh", envEnvironment, 0o755},
			{".singularity.d/env/95-apps.sh", envApps, 0o755},
			{".singularity.d/env/99-base.sh", envBase99, 0o755},
			{".singularity.d/env/99-runtimevars.sh", envRuntimeVars, 0o755},
			{".singularity.d/runscript", sif.Runscript(cfg), 0o755},
			{".singularity.d/startscript", startScript, 0o755},
			{".singularity.d/labels.json", string(labels), 0o644},
		},
	}
}

// writeSingularityD writes sd into the root file system on disk (the tree
// path). Every path is resolved inside the root.
func writeSingularityD(r *rootFS, sd singularityD) error {
	// An image's own /.singularity.d that is not a directory (a symlink, a
	// file) would redirect the writes below: replace it.
	if fi, err := os.Lstat(r.host(".singularity.d")); err == nil && !fi.IsDir() {
		if err := fsutil.RemoveAll(r.host(".singularity.d")); err != nil {
			return err
		}
	}
	for _, d := range sd.dirs {
		if _, err := r.mkdirAll(d); err != nil {
			return fmt.Errorf("make /%s: %w", d, err)
		}
	}
	for _, l := range sd.links {
		if _, err := os.Lstat(r.host(l.name)); err == nil {
			continue // the image has its own; keep it, as Apptainer does
		}
		if err := os.Symlink(l.target, r.host(l.name)); err != nil {
			return fmt.Errorf("link /%s: %w", l.name, err)
		}
	}
	for _, f := range sd.files {
		if err := r.writeFile(f.name, []byte(f.data), f.mode); err != nil {
			return fmt.Errorf("write /%s: %w", f.name, err)
		}
	}
	return nil
}

// addSingularityD adds sd to the in-memory tree (the streaming path), with
// the same rules as writeSingularityD.
func (t *tree) addSingularityD(sd singularityD) error {
	if n, ok := t.root.children[".singularity.d"]; ok && !n.isDir() {
		delete(t.root.children, ".singularity.d")
	}
	for _, d := range sd.dirs {
		if _, err := t.mkdirAll(d); err != nil {
			return fmt.Errorf("make /%s: %w", d, err)
		}
	}
	for _, l := range sd.links {
		if _, ok := t.root.children[l.name]; ok {
			continue
		}
		t.root.children[l.name] = &inode{typ: tar.TypeSymlink, mode: 0o777, link: l.target, layer: -1}
	}
	for _, f := range sd.files {
		n := &inode{typ: tar.TypeReg, mode: int64(f.mode), size: int64(len(f.data)), layer: -1, data: []byte(f.data)}
		if _, err := t.put(f.name, n); err != nil {
			return fmt.Errorf("write /%s: %w", f.name, err)
		}
	}
	return nil
}

// writeFile replaces whatever is at rel (resolved inside the root) with a
// regular file holding data, owned by the converting user.
func (r *rootFS) writeFile(rel string, data []byte, mode uint32) error {
	res, err := r.prepareEntry(rel, false)
	if err != nil {
		return err
	}
	fd, err := os.OpenFile(r.host(res), os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, fs.FileMode(mode))
	if err != nil {
		return err
	}
	if _, err := fd.Write(data); err != nil {
		fd.Close()
		return err
	}
	if err := unix.Fchmod(int(fd.Fd()), mode); err != nil {
		fd.Close()
		return err
	}
	return fd.Close()
}

// labelsJSON renders labels the way Apptainer writes /.singularity.d/labels.json
// (tab-indented, keys sorted); no labels give "{}".
func labelsJSON(labels map[string]string) ([]byte, error) {
	if labels == nil {
		labels = map[string]string{}
	}
	b, err := json.MarshalIndent(labels, "", "\t")
	if err != nil {
		return nil, fmt.Errorf("encode labels: %w", err)
	}
	return b, nil
}

// envScript renders an image's Env as /.singularity.d/env/10-docker2singularity.sh,
// with Apptainer's rules: PATH is set as the image says, every other
// variable keeps a value already given by the user (--env, APPTAINERENV_*).
// Ordinary values are written exactly as Apptainer writes them. Values with
// characters special to the shell (\ " ` $, control characters) come out
// mangled (or, with a backquote, executed) from Apptainer's quoting; they
// are written as single-quoted literals instead, so the container sees the
// value the image declares, as under Docker.
func envScript(env []string, log zerolog.Logger) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	for _, kv := range env {
		k, v, hasValue := strings.Cut(kv, "=")
		if !envName.MatchString(k) {
			log.Warn().Str("env", kv).Msg("skipping image environment variable with a name the shell cannot export")
			continue
		}
		literal := "'" + escapeSingleQuotes(v) + "'"
		plain := !strings.ContainsAny(v, "\\\"`$") && strconv.Quote(v) == `"`+v+`"`
		switch {
		case !hasValue:
			fmt.Fprintf(&b, "export %s=\"${%s:-}\"\n", k, k)
		case k == "PATH" && plain:
			fmt.Fprintf(&b, "export %s=%q\n", k, v)
		case k == "PATH":
			fmt.Fprintf(&b, "export %s=%s\n", k, literal)
		case plain:
			fmt.Fprintf(&b, "export %s=\"${%s:-%q}\"\n", k, k, v)
		default:
			fmt.Fprintf(&b, "[ -n \"${%s:-}\" ] || %s=%s; export %s\n", k, k, literal, k)
		}
	}
	return b.String()
}

// escapeSingleQuotes makes s safe inside a single-quoted shell word.
func escapeSingleQuotes(s string) string { return sif.EscapeSingleQuotes(s) }
