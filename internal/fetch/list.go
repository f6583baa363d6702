package fetch

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
)

// maxListLine bounds one line of a model list, which may come from anyone.
const maxListLine = 4096

// ReadModelList reads a model list as 'scv-hpc stage -f FILE' takes it: one MODEL per
// line; blank lines and everything from a '#' that starts a line or follows a blank are
// comments. A line with more than one word is an error naming the line, so a missing
// newline between two models is caught. source names the list in errors.
func ReadModelList(r io.Reader, source string) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1024), maxListLine)
	var models []string
	for n := 1; sc.Scan(); n++ {
		line := stripComment(sc.Text())
		fields := strings.FieldsFunc(line, unicode.IsSpace)
		switch len(fields) {
		case 0:
			continue
		case 1:
			models = append(models, fields[0])
		default:
			return nil, fmt.Errorf("%s:%d: %q: one model per line", source, n, strings.TrimSpace(line))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w (lines are limited to %d bytes)", source, err, maxListLine)
	}
	return models, nil
}

func stripComment(line string) string {
	for i, r := range line {
		if r == '#' && (i == 0 || unicode.IsSpace(rune(line[i-1]))) {
			return line[:i]
		}
	}
	return line
}

// ErrNoModels is returned by Models when neither arguments nor a list name a model.
var ErrNoModels = errors.New("no models: give MODEL arguments or a model list")

// Models returns the models named by args, then those of the model list in file
// (ReadModelList; "-" reads stdin, "" is none). None at all is ErrNoModels.
func Models(args []string, file string, stdin io.Reader) ([]string, error) {
	models := append([]string{}, args...)
	if file != "" {
		r, name := stdin, "standard input"
		if file != "-" {
			f, err := os.Open(file)
			if err != nil {
				return nil, fmt.Errorf("model list: %w", err)
			}
			defer f.Close()
			r, name = f, file
		}
		list, err := ReadModelList(r, name)
		if err != nil {
			return nil, err
		}
		models = append(models, list...)
	}
	if len(models) == 0 {
		return nil, ErrNoModels
	}
	return models, nil
}
