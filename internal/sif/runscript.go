package sif

import (
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Runscript returns the /.singularity.d/runscript that Apptainer writes for
// an OCI image with this config: ENTRYPOINT then CMD, arguments replacing
// CMD, evaluated by the shell unless the runtime runs with --no-eval.
// internal/convert writes it into every SIF; Info.ReadRunscript rebuilds it
// from the config when unsquashfs is missing.
func Runscript(cfg v1.Config) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	fmt.Fprintf(&b, "OCI_ENTRYPOINT='%s'\n", EscapeSingleQuotes(argsQuoted(cfg.Entrypoint)))
	fmt.Fprintf(&b, "OCI_CMD='%s'\n", EscapeSingleQuotes(argsQuoted(cfg.Cmd)))
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

// EscapeSingleQuotes makes s safe inside a single-quoted shell word.
func EscapeSingleQuotes(s string) string {
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
		q[i] = "'" + EscapeSingleQuotes(a) + "'"
	}
	return strings.Join(q, " ")
}

// runscriptBody follows the OCI_ENTRYPOINT / OCI_CMD assignments in the
// runscript. %s is replaced by the commands that prepend CMD and ENTRYPOINT
// to "$@" when the runtime asks for no shell evaluation (--no-eval).
const runscriptBody = `
# With --no-eval, run ENTRYPOINT / CMD / arguments as given (OCI behaviour):
# arguments replace CMD, ENTRYPOINT comes first.
if [ -n "${SINGULARITY_NO_EVAL:-}" ]; then
%s    exec "$@"
fi

# By default the ENTRYPOINT / CMD / arguments line is evaluated by the shell
# before it runs, as Apptainer and Singularity have always done.
CMDLINE_ARGS=""
for arg in "$@"; do
    CMDLINE_ARGS="${CMDLINE_ARGS} \"$arg\""
done

if [ $# -gt 0 ]; then
    SINGULARITY_OCI_RUN="${OCI_ENTRYPOINT} ${CMDLINE_ARGS}"
else
    SINGULARITY_OCI_RUN="${OCI_ENTRYPOINT} ${OCI_CMD}"
fi

eval "set -- ${SINGULARITY_OCI_RUN}"
exec "$@"
`
