// Package docs embeds commands.md, the reference of scv-hpc's commands: the one source
// of the summary, description and examples that each command's --help prints.
package docs

import (
	_ "embed"
	"fmt"
	"strings"
)

//go:embed commands.md
var commandsMD string

// Help is what a command's --help says besides its usage line and flags.
type Help struct {
	Short   string // one line, in the parent's list of commands
	Long    string // the description
	Example string // example command lines, indented
}

// Commands returns the help of every command in commands.md, by command path
// ("scv-hpc cache ls").
func Commands() (map[string]Help, error) { return parse(commandsMD) }

// parse reads the sections of a command reference. Text before the first section is
// the page's introduction. A section is
//
//	## PATH
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
func parse(md string) (map[string]Help, error) {
	out := map[string]Help{}
	lines := strings.Split(md, "\n")
	path := ""
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
		switch {
		case strings.HasPrefix(line, "## "):
			if err := end(); err != nil {
				return nil, err
			}
			path, h = strings.TrimPrefix(line, "## "), Help{}
			if _, dup := out[path]; dup || path != strings.TrimSpace(path) || !strings.HasPrefix(path, "scv-hpc") {
				return nil, fmt.Errorf("commands.md:%d: bad or repeated section %q", n, path)
			}
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
	return out, nil
}
