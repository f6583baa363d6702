// Package version holds the scv-hpc version, set at link time by the Makefile
// (-ldflags "-X .../internal/version.Version=...") and recorded in every SIF and job.
package version

import "runtime/debug"

// Version is the release version; "dev" for builds from a work tree.
var Version = "dev"

// String returns the version with the VCS revision when the build has one.
func String() string {
	v := Version
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += "+" + s.Value[:12]
			}
		}
	}
	return v
}
