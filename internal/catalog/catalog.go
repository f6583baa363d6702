// Package catalog maps model names to container images. An embedded default catalog
// is extended or overridden, by name, by a site catalog and by user catalog files.
package catalog

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"gopkg.in/yaml.v3"
)

//go:embed default.yaml
var defaultYAML []byte

// defaultSource names the embedded catalog in errors and in Entry.Source.
const defaultSource = "embedded default catalog"

// SiteFile is the site-wide catalog read, when present, after the embedded one and
// before the files given to Load. Tests and packagers may point it elsewhere.
var SiteFile = "/etc/scv-hpc/catalog.yaml"

// ErrUnknown is returned (wrapped) by Lookup for a name the catalog does not hold.
var ErrUnknown = errors.New("not in the catalog")

// ErrUnreadable is returned by Load for a catalog file it cannot read.
var ErrUnreadable = errors.New("cannot read the catalog file")

// Entry is one model of the catalog.
type Entry struct {
	Name        string   `yaml:"name" json:"name"`
	Version     string   `yaml:"version,omitempty" json:"version,omitempty"`
	Image       string   `yaml:"image" json:"image"`
	Description string   `yaml:"description,omitempty" json:"description,omitempty"`
	Tasks       []string `yaml:"tasks,omitempty" json:"tasks,omitempty"`
	GPU         bool     `yaml:"gpu,omitempty" json:"gpu"`
	// Predict is the command that speaks predict protocol v1 inside the container.
	// In YAML it is a list, or a string split like a shell word list.
	Predict Command `yaml:"predict,omitempty" json:"predict,omitempty"`
	// Deprecated, when set, is shown as a warning every time the model is used.
	Deprecated string `yaml:"deprecated,omitempty" json:"deprecated,omitempty"`
	// Source is the file the entry was read from ("embedded default catalog" for the
	// embedded one).
	Source string `yaml:"-" json:"source"`
}

// ID is name@version, or name when the entry has no version.
func (e *Entry) ID() string {
	if e.Version == "" {
		return e.Name
	}
	return e.Name + "@" + e.Version
}

// Command is a predict command line. It unmarshals from a YAML list of words or from
// one string split like a POSIX shell word list (quotes and backslashes, no expansion).
type Command []string

// UnmarshalYAML accepts a string or a sequence of strings.
func (c *Command) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		var s string
		if err := n.Decode(&s); err != nil {
			return err
		}
		words, err := SplitWords(s)
		if err != nil {
			return fmt.Errorf("line %d: predict: %w", n.Line, err)
		}
		*c = words
		return nil
	case yaml.SequenceNode:
		var words []string
		if err := n.Decode(&words); err != nil {
			return err
		}
		*c = words
		return nil
	}
	return fmt.Errorf("line %d: predict: want a string or a list of strings", n.Line)
}

// Catalog is the merged set of entries, looked up by name or name@version.
type Catalog struct {
	byName map[string][]*Entry // versions of one name, in file order
	order  []string            // names in first-seen order
}

type file struct {
	Models []Entry `yaml:"models"`
}

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)

// Parse reads catalog YAML and validates every entry; source names the file in errors.
// Unknown fields are errors, so a misspelt key does not pass silently.
func Parse(data []byte, source string) ([]Entry, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("catalog %s: %w", source, err)
	}
	seen := map[string]bool{}
	for i := range f.Models {
		e := &f.Models[i]
		e.Source = source
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("catalog %s: entry %d (%s): %w", source, i+1, entryLabel(e), err)
		}
		if seen[e.ID()] {
			return nil, fmt.Errorf("catalog %s: entry %d: duplicate model %s (each name@version once per file)", source, i+1, e.ID())
		}
		seen[e.ID()] = true
	}
	return f.Models, nil
}

func entryLabel(e *Entry) string {
	if e.Name == "" {
		return "no name"
	}
	return e.ID()
}

// Validate checks one entry: a valid name, a version without '@', an image that parses,
// a predict command (if any) that names a program.
func (e *Entry) Validate() error {
	if e.Name == "" {
		return errors.New("missing name")
	}
	if !namePattern.MatchString(e.Name) {
		return fmt.Errorf("name %q: use lower-case letters, digits, '.', '_' and '-' (no '/', ':' or '@')", e.Name)
	}
	if strings.ContainsAny(e.Version, "@/: \t") {
		return fmt.Errorf("version %q: must not contain '@', '/', ':' or spaces", e.Version)
	}
	if strings.TrimSpace(e.Image) == "" {
		return errors.New("missing image")
	}
	if err := ValidateImage(e.Image); err != nil {
		return err
	}
	if len(e.Predict) > 0 && e.Predict[0] == "" {
		return errors.New("predict: empty command")
	}
	return nil
}

// ValidateImage checks an image source: an OCI reference, oci-layout:DIR[:TAG] or
// docker-archive:FILE.
func ValidateImage(image string) error {
	for _, p := range []string{"oci-layout:", "docker-archive:"} {
		if rest, ok := strings.CutPrefix(image, p); ok {
			if rest == "" {
				return fmt.Errorf("image %q: %s needs a path", image, p)
			}
			return nil
		}
	}
	if _, err := name.ParseReference(image); err != nil {
		return fmt.Errorf("image %q: not a valid reference: %w", image, err)
	}
	return nil
}

// Load reads the embedded catalog, then SiteFile when it exists, then each extra file
// in order. A later entry replaces every earlier entry of the same name (so a site can
// point a model at its own mirror); versions of one name within one file coexist.
func Load(extra ...string) (*Catalog, error) {
	c := &Catalog{byName: map[string][]*Entry{}}
	def, err := Parse(defaultYAML, defaultSource)
	if err != nil {
		return nil, err
	}
	c.merge(def)
	files := []string{}
	if SiteFile != "" {
		if _, err := os.Stat(SiteFile); err == nil {
			files = append(files, SiteFile)
		}
	}
	files = append(files, extra...)
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("catalog %s: %w: %w", path, ErrUnreadable, err)
		}
		entries, err := Parse(data, path)
		if err != nil {
			return nil, err
		}
		c.merge(entries)
	}
	return c, nil
}

// merge adds one file's entries: names it defines replace the earlier ones entirely.
func (c *Catalog) merge(entries []Entry) {
	replaced := map[string]bool{}
	for i := range entries {
		e := entries[i]
		if !replaced[e.Name] {
			replaced[e.Name] = true
			if _, ok := c.byName[e.Name]; !ok {
				c.order = append(c.order, e.Name)
			}
			c.byName[e.Name] = nil
		}
		c.byName[e.Name] = append(c.byName[e.Name], &e)
	}
}

// ImageOf returns the image of the catalog ID id ("name" or "name@version"), and
// false when the catalog has no such model: the check of a bundle's catalog refs
// (cache.ImportOptions.ImageOf).
func (c *Catalog) ImageOf(id string) (string, bool) {
	e, err := c.Lookup(id)
	if err != nil {
		return "", false
	}
	return e.Image, true
}

// Lookup finds "name" (its newest version) or "name@version". The error for an
// unknown name wraps ErrUnknown and suggests close names.
func (c *Catalog) Lookup(model string) (*Entry, error) {
	n, ver, hasVer := strings.Cut(model, "@")
	versions := c.byName[n]
	if len(versions) == 0 {
		msg := fmt.Sprintf("model %q is %v", n, ErrUnknown)
		if s := c.suggest(n); s != "" {
			msg += "; did you mean " + s + "?"
		}
		return nil, fmt.Errorf("%s%w", msg, hidden{ErrUnknown})
	}
	if !hasVer {
		return newest(versions), nil
	}
	for _, e := range versions {
		if e.Version == ver {
			return e, nil
		}
	}
	have := make([]string, 0, len(versions))
	for _, e := range versions {
		have = append(have, e.ID())
	}
	return nil, fmt.Errorf("model %s: version %q is %v; it has %s%w", n, ver, ErrUnknown, strings.Join(have, ", "), hidden{ErrUnknown})
}

// hidden wraps a sentinel for errors.Is without adding text to the message.
type hidden struct{ err error }

func (h hidden) Error() string { return "" }
func (h hidden) Unwrap() error { return h.err }

// Has reports whether name (without a version) is in the catalog.
func (c *Catalog) Has(name string) bool { return len(c.byName[name]) > 0 }

// Entries returns every entry, sorted by name and then by version, newest first.
func (c *Catalog) Entries() []*Entry {
	names := append([]string{}, c.order...)
	sort.Strings(names)
	var out []*Entry
	for _, n := range names {
		vs := append([]*Entry{}, c.byName[n]...)
		sort.SliceStable(vs, func(i, j int) bool { return compareVersions(vs[i].Version, vs[j].Version) > 0 })
		out = append(out, vs...)
	}
	return out
}

func newest(vs []*Entry) *Entry {
	best := vs[0]
	for _, e := range vs[1:] {
		if compareVersions(e.Version, best.Version) > 0 {
			best = e
		}
	}
	return best
}

// compareVersions compares dotted versions part by part, numerically where both parts
// are numbers ("1.10" > "1.9"), as strings otherwise.
func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) || i < len(pb); i++ {
		var x, y string
		if i < len(pa) {
			x = pa[i]
		}
		if i < len(pb) {
			y = pb[i]
		}
		nx, ex := strconv.Atoi(x)
		ny, ey := strconv.Atoi(y)
		switch {
		case ex == nil && ey == nil && nx != ny:
			if nx < ny {
				return -1
			}
			return 1
		case (ex != nil || ey != nil) && x != y:
			return strings.Compare(x, y)
		}
	}
	return 0
}

// suggest returns catalog names within a small edit distance of n, or with n as prefix.
func (c *Catalog) suggest(n string) string {
	var out []string
	for _, cand := range c.order {
		if strings.HasPrefix(cand, n) || levenshtein(n, cand) <= 2 {
			out = append(out, cand)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
