// Package slurm renders the sbatch array script of a job, submits it as one or
// more job arrays, reads the arrays' task states back from squeue and cancels
// them. It runs Slurm's own clients (sbatch, squeue, scontrol, scancel) with the
// environment of the process, so SLURM_CONF is honoured.
package slurm

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"

	"github.com/scivision-hpc/scv-hpc/templates"
)

// Params are the values a job script template sees. Site templates may use
// every field; docs/slurm.md lists them.
type Params struct {
	Version string // scv-hpc version, for the header
	Model   string // the model as the user named it (comments only)
	Digest  string // image manifest digest (comments only)

	JobName string // --job-name
	Array   string // --array, e.g. "0-99%2"

	Resources // .Partition, .Account, .QOS, .Time, .CPUsPerTask, .Mem, .GPUsPerTask, .Gres

	Requeue       bool // --requeue
	SignalSeconds int  // --signal=B:TERM@N: seconds before the time limit

	Binary     string   // absolute path of scv-hpc on the nodes
	JobDir     string   // absolute job directory
	GlobalArgs []string // scv-hpc flags before run-shard (--offline, --cache DIR)
	RunArgs    []string // run-shard flags after the shard (--retry-failed)

	// Offset maps array task T to shard Offset+T; when ShardList is set, task T
	// runs shard ShardList[T] instead.
	Offset    int
	ShardList []int
}

// ShardSummary describes the shards of the array in one line, for the header.
func (p Params) ShardSummary() string {
	if len(p.ShardList) > 0 {
		return fmt.Sprintf("%d listed shards (task T runs shards[T])", len(p.ShardList))
	}
	return fmt.Sprintf("offset %d (task T runs shard %d+T)", p.Offset, p.Offset)
}

// ErrUnsafeValue is returned for a value that cannot be written into an
// #SBATCH line or a shell script safely.
var ErrUnsafeValue = errors.New("unsafe value")

// Template is a parsed job script template.
type Template struct {
	name string
	t    *template.Template
}

var funcs = template.FuncMap{
	"shq":     Quote,
	"sbatch":  sbatchValue,
	"comment": comment,
	"join": func(v []int) string {
		s := make([]string, len(v))
		for i, n := range v {
			s[i] = strconv.Itoa(n)
		}
		return strings.Join(s, " ")
	},
}

// ParseTemplate parses a job script template; name is used in errors.
func ParseTemplate(name, text string) (*Template, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(funcs).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("parse job script template %s: %w", name, err)
	}
	return &Template{name: name, t: t}, nil
}

// DefaultTemplate returns the embedded templates/job.sbatch.tmpl.
func DefaultTemplate() *Template {
	b, err := templates.FS.ReadFile(templates.JobScript)
	if err != nil {
		panic(err) // embedded: cannot happen
	}
	t, err := ParseTemplate("embedded "+templates.JobScript, string(b))
	if err != nil {
		panic(err)
	}
	return t
}

// LoadTemplate reads a site template from a file.
func LoadTemplate(path string) (*Template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read job script template: %w", err)
	}
	return ParseTemplate(path, string(b))
}

// Render writes the job script for p with the embedded template.
func Render(w io.Writer, p Params) error { return DefaultTemplate().Render(w, p) }

// Render checks p and writes the job script.
func (t *Template) Render(w io.Writer, p Params) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if err := t.t.Execute(w, p); err != nil {
		return fmt.Errorf("render job script with template %s: %w", t.name, err)
	}
	return nil
}

// Validate checks that every value can reach the script safely: #SBATCH values
// have no whitespace, quotes or control characters (sbatch reads such lines
// word by word and a newline would end the line), paths are absolute and have
// no NUL byte. Everything else is quoted by the template.
func (p Params) Validate() error {
	for _, f := range []struct{ name, v string }{
		{"job name", p.JobName}, {"array", p.Array}, {"partition", p.Partition},
		{"account", p.Account}, {"qos", p.QOS}, {"time", p.Time}, {"mem", p.Mem}, {"gres", p.Gres},
	} {
		if _, err := sbatchValue(f.v); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if p.JobName == "" || p.Array == "" {
		return errors.New("job script: job name and array are required")
	}
	for _, f := range []struct{ name, v string }{{"scv-hpc binary", p.Binary}, {"job directory", p.JobDir}} {
		if !filepath.IsAbs(f.v) {
			return fmt.Errorf("%s %q: %w: must be an absolute path", f.name, f.v, ErrUnsafeValue)
		}
	}
	for _, v := range append(append([]string{p.Binary, p.JobDir}, p.GlobalArgs...), p.RunArgs...) {
		if strings.ContainsRune(v, 0) {
			return fmt.Errorf("%q: %w: contains a NUL byte", v, ErrUnsafeValue)
		}
	}
	if p.CPUsPerTask < 0 || p.GPUsPerTask < 0 || p.SignalSeconds < 0 || p.Offset < 0 {
		return fmt.Errorf("job script: negative count (cpus %d, gpus %d, signal %d, offset %d)", p.CPUsPerTask, p.GPUsPerTask, p.SignalSeconds, p.Offset)
	}
	return nil
}

// Quote returns s as one shell word: single-quoted, with each ' written as
// '\”. Inside single quotes nothing is special to the shell, newlines included.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// QuoteArgs quotes each word of a command line, leaving plain words bare.
func QuoteArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,%@+", r))
		}) < 0 {
			out[i] = a
		} else {
			out[i] = Quote(a)
		}
	}
	return strings.Join(out, " ")
}

// sbatchValue refuses what an #SBATCH line cannot carry.
func sbatchValue(v string) (string, error) {
	for _, r := range v {
		if r <= ' ' || r == 0x7f || r == '"' || r == '\'' || r == '\\' || r == '#' {
			return "", fmt.Errorf("%q: %w: an #SBATCH option cannot hold whitespace, newlines, quotes, backslashes or '#'", v, ErrUnsafeValue)
		}
	}
	return v, nil
}

// comment makes a value safe inside a # comment line.
func comment(v string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, v)
}

// JobName derives a Slurm job name from a model name: letters, digits, '.',
// '_' and '-' only, prefixed "scv-".
func JobName(model string) string {
	var b strings.Builder
	b.WriteString("scv-")
	for _, r := range model {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 64 {
			break
		}
	}
	return b.String()
}
