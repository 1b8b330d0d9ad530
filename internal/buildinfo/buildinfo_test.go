package buildinfo

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.0",
		Main:      debug.Module{Path: "github.com/spine-platform/spine", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{
			{Key: "-buildmode", Value: "exe"},
			{Key: "-ldflags", Value: "-X main.secret=hunter2"},
			{Key: "-race", Value: "true"},
			{Key: "CGO_ENABLED", Value: "1"},
			{Key: "GOARCH", Value: "arm64"},
			{Key: "GOOS", Value: "linux"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	got := fromBuildInfo(bi, true)
	if got.Version != "v1.2.3" || got.GoVersion != "go1.26.0" || got.OS != "linux" || got.Arch != "arm64" || !got.Race ||
		got.Commit != "0123456789abcdef0123456789abcdef01234567" || !got.Modified ||
		got.CommitTime == nil || !got.CommitTime.Equal(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("fromBuildInfo = %+v", got)
	}
	if got.ShortCommit() != "0123456789ab" {
		t.Errorf("ShortCommit = %q", got.ShortCommit())
	}
	if got.Settings["CGO_ENABLED"] != "1" || got.Settings["-buildmode"] != "exe" || got.Settings["vcs"] != "git" {
		t.Errorf("settings %v", got.Settings)
	}
	for _, k := range []string{"-ldflags", "vcs.revision", "GOOS", "-race"} {
		if _, ok := got.Settings[k]; ok {
			t.Errorf("settings hold %s: %v", k, got.Settings)
		}
	}

	none := fromBuildInfo(nil, false)
	if none.GoVersion != runtime.Version() || none.OS != runtime.GOOS || none.Commit != "" || none.Version != "(unknown)" {
		t.Errorf("without build info: %+v", none)
	}
	if v := Read("v9.9.9").Version; v != "v9.9.9" {
		t.Errorf("Read with a link-time version: %q", v)
	}
}
