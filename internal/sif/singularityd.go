package sif

import (
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
)

// envName is what a POSIX shell accepts as a variable name; other names in an
// image's Env cannot be exported by the env script and are skipped.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// writeSingularityD writes the runtime files Apptainer's OCI conversion puts
// in an image: the base directories and links, /.singularity.d/{actions,env,
// libs}, the runscript from Entrypoint/Cmd, the env script from Env and
// labels.json (labels, from labelsJSON). Every path is resolved inside the root.
func writeSingularityD(r *rootFS, cfg v1.Config, labels []byte, log zerolog.Logger) error {
	// An image's own /.singularity.d that is not a directory (a symlink, a
	// file) would redirect the writes below: replace it.
	if fi, err := os.Lstat(r.host(".singularity.d")); err == nil && !fi.IsDir() {
		if err := removeAll(r.host(".singularity.d")); err != nil {
			return err
		}
	}
	for _, d := range []string{
		".singularity.d/libs", ".singularity.d/actions", ".singularity.d/env",
		"dev", "proc", "root", "var/tmp", "tmp", "etc", "sys", "home",
	} {
		if _, err := r.mkdirAll(d); err != nil {
			return fmt.Errorf("make /%s: %w", d, err)
		}
	}
	for _, l := range []struct{ name, target string }{
		{"singularity", ".singularity.d/runscript"},
		{".run", ".singularity.d/actions/run"},
		{".exec", ".singularity.d/actions/exec"},
		{".test", ".singularity.d/actions/test"},
		{".shell", ".singularity.d/actions/shell"},
		{"environment", ".singularity.d/env/90-environment.sh"},
	} {
		if _, err := os.Lstat(r.host(l.name)); err == nil {
			continue // the image has its own; keep it, as Apptainer does
		}
		if err := os.Symlink(l.target, r.host(l.name)); err != nil {
			return fmt.Errorf("link /%s: %w", l.name, err)
		}
	}
	for _, f := range []struct {
		name, data string
		mode       uint32
	}{
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
		{".singularity.d/runscript", Runscript(cfg), 0o755},
		{".singularity.d/startscript", startScript, 0o755},
		{".singularity.d/labels.json", string(labels), 0o644},
	} {
		if err := r.writeFile(f.name, []byte(f.data), f.mode); err != nil {
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

// Runscript returns the /.singularity.d/runscript that Apptainer writes for
// an OCI image with this config: ENTRYPOINT then CMD, arguments replacing
// CMD, evaluated by the shell unless the runtime runs with --no-eval.
func Runscript(cfg v1.Config) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	fmt.Fprintf(&b, "OCI_ENTRYPOINT='%s'\n", escapeSingleQuotes(argsQuoted(cfg.Entrypoint)))
	fmt.Fprintf(&b, "OCI_CMD='%s'\n", escapeSingleQuotes(argsQuoted(cfg.Cmd)))
	var noEval strings.Builder
	if len(cfg.Cmd) > 0 {
		fmt.Fprintf(&noEval, "    if [ $# -eq 0 ]; then\n        set -- %s \"$@\"\n    fi\n", singleQuotedList(cfg.Cmd))
	}
	if len(cfg.Entrypoint) > 0 {
		fmt.Fprintf(&noEval, "    set -- %s \"$@\"\n", singleQuotedList(cfg.Entrypoint))
	}
	fmt.Fprintf(&b, runscriptBody, noEval.String())
	return b.String()
}

// shellEscape escapes what is special inside double quotes: \ " ` $.
func shellEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "`", "\\`", `$`, `\$`).Replace(s)
}

// escapeSingleQuotes makes s safe inside a single-quoted shell word.
func escapeSingleQuotes(s string) string {
	return strings.ReplaceAll(s, `'`, `'"'"'`)
}

// argsQuoted joins args as double-quoted, escaped shell words.
func argsQuoted(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = `"` + shellEscape(a) + `"`
	}
	return strings.Join(q, " ")
}

// singleQuotedList renders args as single-quoted shell words.
func singleQuotedList(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + escapeSingleQuotes(a) + "'"
	}
	return strings.Join(q, " ")
}
