package registry

import "github.com/spf13/pflag"

// AddFlags defines the flags of commands that fetch images on fs, bound to o:
// --platform (default DefaultPlatform) and --insecure-registry.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Platform, "platform", DefaultPlatform, "image platform os/arch[/variant] to pick from a multi-platform image")
	fs.StringSliceVar(&o.Insecure, "insecure-registry", nil, "registry HOST[:PORT] to reach over plain HTTP (loopback registries always are); repeatable")
}
