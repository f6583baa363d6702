// Package docs embeds commands.md, the reference of scv-hpc's commands: the one source
// of the summary, description and examples that each command's --help prints.
package docs

import (
	_ "embed"
	"fmt"
	"slices"
	"strings"
)

//go:embed commands.md
var commandsMD string

// Help is what a command's --help says besides its usage line and flags.
type Help struct {
	Short   string // one line, in the parent's list of commands
	Long    string // the description
	Example string // example command lines, indented
	Group   string // the heading the section sits under ("" for none)
}

// Reference is the command reference: every command's help and the headings that
// group the commands.
type Reference struct {
	Commands map[string]Help // by command path ("scv-hpc cache ls")
	Groups   []string        // the group headings, in page order
}

// Commands returns the reference in commands.md.
func Commands() (*Reference, error) { return parse(commandsMD) }

// parse reads the sections of a command reference. Text before the first heading is
// the page's introduction. A heading "## TITLE" that is not a command path starts a
// group: the sections after it belong to it. A section is
//
//	## PATH  (or ### PATH, in a group)
//
//	SHORT
//
//	```text
//	LONG
//	```
//
//	Examples:
//
//	```sh
//	EXAMPLE
//	```
//
// where the text and sh blocks are optional, and nothing else is allowed: an error
// names the line, so that a mistake in the page fails the tests, not a user's --help.
func parse(md string) (*Reference, error) {
	out := map[string]Help{}
	var groups []string
	lines := strings.Split(md, "\n")
	path, group := "", ""
	var h Help
	end := func() error {
		if path == "" {
			return nil
		}
		if h.Short == "" {
			return fmt.Errorf("commands.md: %q has no summary line", path)
		}
		out[path] = h
		return nil
	}
	for i := 0; i < len(lines); i++ {
		line, n := lines[i], i+1
		heading, level := "", 0
		if t, ok := strings.CutPrefix(line, "### "); ok {
			heading, level = t, 3
		} else if t, ok := strings.CutPrefix(line, "## "); ok {
			heading, level = t, 2
		}
		isCommand := level > 0 && (heading == "scv-hpc" || strings.HasPrefix(heading, "scv-hpc "))
		switch {
		case isCommand:
			if err := end(); err != nil {
				return nil, err
			}
			path, h = heading, Help{Group: group}
			if _, dup := out[path]; dup || path != strings.TrimSpace(path) || (group == "") != (level == 2) {
				return nil, fmt.Errorf("commands.md:%d: bad or repeated section %q (## PATH outside a group, ### PATH in one)", n, heading)
			}
		case level == 2:
			if err := end(); err != nil {
				return nil, err
			}
			path, group = "", heading
			if slices.Contains(groups, group) || group != strings.TrimSpace(group) || group == "" {
				return nil, fmt.Errorf("commands.md:%d: bad or repeated group %q", n, group)
			}
			groups = append(groups, group)
		case strings.HasPrefix(line, "#") && (path != "" || group != ""):
			return nil, fmt.Errorf("commands.md:%d: a heading that is neither a command path nor a group: %q", n, line)
		case path == "" || line == "" || line == "Examples:":
		case line == "```text" || line == "```sh":
			j := i + 1
			for j < len(lines) && lines[j] != "```" {
				j++
			}
			if j == len(lines) {
				return nil, fmt.Errorf("commands.md:%d: %s block not closed", n, line)
			}
			block := strings.Join(lines[i+1:j], "\n")
			dst := &h.Long
			if line == "```sh" {
				dst = &h.Example
			}
			if *dst != "" || block == "" {
				return nil, fmt.Errorf("commands.md:%d: repeated or empty %s block in %q", n, line, path)
			}
			*dst, i = block, j
		case h.Short == "" && h.Long == "" && h.Example == "" && !strings.HasPrefix(line, "```"):
			h.Short = line
		default:
			return nil, fmt.Errorf("commands.md:%d: unexpected line in %q: %q", n, path, line)
		}
	}
	if err := end(); err != nil {
		return nil, err
	}
	return &Reference{Commands: out, Groups: groups}, nil
}
