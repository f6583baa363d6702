package report

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"
)

// ErrBadOption marks a report option that cannot be used (a negative count): the
// command line shows it as a usage error.
var ErrBadOption = errors.New("bad report option")

// AddFlags defines --samples (default DefaultSamples) and --max-failed (default
// DefaultMaxFailed) on fs, bound to o. On the command line 0 means none.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.IntVar(&o.Samples, "samples", DefaultSamples, "inputs shown in the gallery's sample (reproducible choice); 0: none")
	fs.IntVar(&o.MaxFailed, "max-failed", DefaultMaxFailed, "failed inputs shown in the gallery at most; 0: none")
}

// FromFlags returns the options the flags give as Write reads them: a count of 0
// (none, on the command line) becomes negative, as 0 means the default to Write. A
// negative count is ErrBadOption.
func (o Options) FromFlags() (Options, error) {
	if o.Samples < 0 || o.MaxFailed < 0 {
		return o, fmt.Errorf("%w: --samples and --max-failed take 0 or more", ErrBadOption)
	}
	if o.Samples == 0 {
		o.Samples = -1
	}
	if o.MaxFailed == 0 {
		o.MaxFailed = -1
	}
	return o, nil
}
