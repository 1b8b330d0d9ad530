// Package buildinfo reads what the Go toolchain recorded in the running
// binary (runtime/debug.ReadBuildInfo): the module version, the commit it
// was built from and the build settings, so that `spine version` and the
// API's /v1/version say exactly which build is running.
//
// Imports: never internal, client, cmd.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Info describes the running binary.
type Info struct {
	// Version is the main module's version ("v1.2.3", or "(devel)" for a
	// build from a work tree); see Read for -ldflags -X.
	Version string `json:"version"`
	// Commit is the VCS revision the binary was built from (vcs.revision),
	// CommitTime its time (vcs.time) and Modified whether the work tree
	// had uncommitted changes (vcs.modified). Empty when the build
	// recorded no VCS information (go run, -buildvcs=false, go test).
	Commit     string     `json:"commit,omitempty"`
	CommitTime *time.Time `json:"commit_time,omitempty"`
	Modified   bool       `json:"modified"`
	// GoVersion is the toolchain that built the binary; OS and Arch its
	// target.
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	// Race reports a build with the race detector (-race).
	Race bool `json:"race"`
	// Settings are the other build settings the toolchain recorded
	// (CGO_ENABLED, GOAMD64, -tags, -trimpath, -buildmode, ...), except
	// -ldflags and -gcflags, whose values may hold whatever a build
	// script passed (-X values), and which are public here.
	Settings map[string]string `json:"settings,omitempty"`
}

// hidden are the settings never reported, and those reported as fields.
var hidden = []string{"-ldflags", "-gcflags", "-asmflags", "vcs.revision", "vcs.time", "vcs.modified", "GOOS", "GOARCH", "-race"}

// Read returns the running binary's build information. version, if not
// empty, is the version set at link time (-ldflags "-X main.version=...")
// and replaces the module's.
func Read(version string) Info {
	info := read()
	if version != "" {
		info.Version = version
	}
	return info
}

var read = sync.OnceValue(func() Info { return fromBuildInfo(debug.ReadBuildInfo()) })

func fromBuildInfo(bi *debug.BuildInfo, ok bool) Info {
	info := Info{Version: "(unknown)", GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if !ok || bi == nil {
		return info
	}
	if bi.Main.Version != "" {
		info.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		info.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value
		case "vcs.time":
			if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
				info.CommitTime = &t
			}
		case "vcs.modified":
			info.Modified, _ = strconv.ParseBool(s.Value)
		case "GOOS":
			info.OS = s.Value
		case "GOARCH":
			info.Arch = s.Value
		case "-race":
			info.Race, _ = strconv.ParseBool(s.Value)
		}
		if slices.Contains(hidden, s.Key) {
			continue
		}
		if info.Settings == nil {
			info.Settings = map[string]string{}
		}
		info.Settings[s.Key] = s.Value
	}
	return info
}

// ShortCommit returns the first 12 characters of the commit, "" if none.
func (i Info) ShortCommit() string {
	if len(i.Commit) > 12 {
		return i.Commit[:12]
	}
	return i.Commit
}
