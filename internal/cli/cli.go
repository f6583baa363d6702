// Package cli holds what the command tree needs from cobra beyond declaring commands:
// the exit codes and how an error is shown, arguments checked as usage errors, help
// text and groups set from the command reference, and JSON or text output.
//
// It knows no command: cmd/scv-hpc declares them and adds its hints to errors before
// they reach Exit.
package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/docs"
)

// Exit codes, as the README documents them.
const (
	ExitOK           = 0
	ExitError        = 1
	ExitUsage        = 2 // a wrong invocation: bad flags, arguments or options
	ExitInputsFailed = 3 // the command finished, and some inputs failed
)

// ErrInputsFailed is returned by commands that finished but recorded failed inputs
// (ExitInputsFailed).
var ErrInputsFailed = errors.New("finished with failed inputs")

// UsageError marks a wrong invocation (ExitUsage).
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// Exit shows err on stderr and returns the process's exit code. An error that is or
// wraps a UsageError, or one of the sentinels in usage, is a wrong invocation: its
// message is followed by where to find the usage. ErrInputsFailed is not shown: the
// command has printed its summary.
func Exit(stderr io.Writer, err error, usage []error) int {
	if err == nil {
		return ExitOK
	}
	if errors.Is(err, ErrInputsFailed) {
		return ExitInputsFailed
	}
	var ue UsageError
	if errors.As(err, &ue) || slices.ContainsFunc(usage, func(e error) bool { return errors.Is(err, e) }) {
		fmt.Fprintf(stderr, "%s: %v\nRun '%[1]s --help' for usage.\n", name, err)
		return ExitUsage
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	return ExitError
}

// name is the program's name in the messages of Exit.
const name = "scv-hpc"

// UsageArgs makes a wrong number or kind of arguments a UsageError in cmd and every
// command below it. A group of commands (one that only holds others, such as 'cache')
// alone prints its help, and a word after it that is no command is a UsageError.
func UsageArgs(cmd *cobra.Command) {
	if cmd.HasSubCommands() && cmd.Run == nil && cmd.RunE == nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return UsageError{fmt.Errorf("unknown command %q for %q", args[0], c.CommandPath())}
			}
			return nil
		}
		cmd.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	} else if check := cmd.Args; check != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				return UsageError{err}
			}
			return nil
		}
	}
	for _, c := range cmd.Commands() {
		UsageArgs(c)
	}
}

// Describe sets the summary, description and examples of root and every command
// below it from ref, by command path, and puts root's commands in ref's groups.
func Describe(root *cobra.Command, ref *docs.Reference) {
	for _, g := range ref.Groups {
		root.AddGroup(&cobra.Group{ID: g, Title: g + ":"})
	}
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		h := ref.Commands[cmd.CommandPath()]
		cmd.Short, cmd.Long, cmd.Example = h.Short, h.Long, h.Example
		if cmd.Parent() == root {
			cmd.GroupID = h.Group
		}
		for _, c := range cmd.Commands() {
			walk(c)
		}
	}
	walk(root)
}

// Render writes v to w as JSON when asJSON, else as text does.
func Render(w io.Writer, asJSON bool, v any, text func(io.Writer) error) error {
	if asJSON {
		return JSON(w, v)
	}
	return text(w)
}

// JSON writes v to w as indented JSON. A nil slice is written as [] rather than null:
// an empty list is still a list to a script that reads it.
func JSON(w io.Writer, v any) error {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice && rv.IsNil() {
		v = []struct{}{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Usagef returns a UsageError with the message fmt.Errorf makes of format and args.
func Usagef(format string, args ...any) error {
	return UsageError{Err: fmt.Errorf(format, args...)}
}
