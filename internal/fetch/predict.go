package fetch

import (
	"errors"
	"fmt"

	"github.com/scivision-hpc/scv-hpc/internal/catalog"
)

// PredictLabel is the image label that names the predict command.
const PredictLabel = "org.scivision.predict"

// Where a predict command came from, as reported by PredictCommand.
// ErrNoPredict: nothing says which command serves the model.
var ErrNoPredict = errors.New("no predict command")

const (
	PredictFromCatalog    = "catalog"
	PredictFromLabel      = "label " + PredictLabel
	PredictFromEntrypoint = "image Entrypoint+Cmd"
)

// PredictCommand picks the command that speaks predict protocol v1: the catalog entry's
// predict, else the image label org.scivision.predict (split like a shell word list),
// else the image's Entrypoint followed by its Cmd. from says which one was used; an
// image with none of them is an error naming the model.
func PredictCommand(model string, e *catalog.Entry, labels map[string]string, entrypoint, cmd []string) (argv []string, from string, err error) {
	if e != nil && len(e.Predict) > 0 {
		return append([]string{}, e.Predict...), PredictFromCatalog, nil
	}
	if l, ok := labels[PredictLabel]; ok {
		words, err := catalog.SplitWords(l)
		if err != nil {
			return nil, "", fmt.Errorf("model %s: image label %s: %w", model, PredictLabel, err)
		}
		if len(words) > 0 {
			return words, PredictFromLabel, nil
		}
	}
	argv = append(append([]string{}, entrypoint...), cmd...)
	if len(argv) == 0 {
		return nil, "", fmt.Errorf("model %s: %w: the catalog has none, the image has no %s label and no Entrypoint or Cmd", model, ErrNoPredict, PredictLabel)
	}
	return argv, PredictFromEntrypoint, nil
}
