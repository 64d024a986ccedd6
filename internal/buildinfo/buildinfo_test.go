package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	const rev = "5cd3456f0e1d2c3b4a5968778695a4b3c2d1e0f9"
	for _, c := range []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"clean checkout", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "false"}}}, rev},
		{"uncommitted changes", debug.BuildInfo{Settings: []debug.BuildSetting{
			{Key: "vcs.modified", Value: "true"}, {Key: "vcs.revision", Value: rev}}}, rev + "+dirty"},
		{"revision wins over the pseudo-version", debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261203141739-5cd3456f0e1d"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}}}, rev},
		{"go install at a tag", debug.BuildInfo{Main: debug.Module{Version: "v1.2.0"}}, "v1.2.0"},
		{"no VCS, no version", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "devel"},
		{"test binary", debug.BuildInfo{}, "devel"},
	} {
		if got := fromBuildInfo(&c.bi); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestVersionSetWins(t *testing.T) {
	defer func(v string) { Version = v }(Version)
	Version = "v9.8.7"
	if got := String(); got != "v9.8.7" {
		t.Errorf("String() = %q with Version set", got)
	}
	Version = ""
	if got := String(); got == "" {
		t.Error("String() is empty without Version")
	}
}
