// Package buildinfo says which cardd this is: the version given at build time,
// else what the Go toolchain recorded of the source it was built from.
package buildinfo

import "runtime/debug"

// Version is set at build time, for a release:
//
//	go build -ldflags "-X github.com/cardd/cardd/internal/buildinfo.Version=v1.2.0" ./cmd/cardd
//
// Empty, String falls back on the build info.
var Version string

// String is Version when set, else the VCS revision the binary was built
// from ("+dirty" when the tree had uncommitted changes), else the module's
// version (go install ...@v1.2.0), else "devel" (go test, go run of a copy
// without VCS).
func String() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	return fromBuildInfo(bi)
}

func fromBuildInfo(bi *debug.BuildInfo) string {
	var rev string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" {
		if dirty {
			rev += "+dirty"
		}
		return rev
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	return "devel"
}
