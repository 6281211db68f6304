package main

import (
	"fmt"
	"regexp"
	"runtime"
	"runtime/debug"

	"github.com/diskport/diskport"
)

// buildVersion, when set at build time with -ldflags "-X
// main.buildVersion=...", overrides the version the build info gives.
var buildVersion = ""

func init() {
	register(&command{
		name:    "version",
		summary: "print diskport's version",
		usage:   "version",
		run:     runVersion,
	})
}

// runVersion runs `diskport version`.
func runVersion(c *command, args []string) error {
	if _, err := c.parse(c.flags(), args, 0, 0); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "diskport %s (%s %s/%s), inflate: %s\n", moduleVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH, diskport.Inflater())
	return nil
}

// pseudoVersion matches the tail of a Go pseudo-version:
// -yyyymmddhhmmss-abcdefabcdef, with +dirty after it for a modified tree.
var pseudoVersion = regexp.MustCompile(`[-.]\d{14}-[0-9a-f]{12}(\+dirty)?$`)

// moduleVersion is the version of the build: the module's tag when built
// from one (go install ...@v1.2.0, or a tagged checkout), else the VCS
// revision it was built from ("+dirty" with uncommitted changes), else
// "devel".
func moduleVersion() string {
	if buildVersion != "" {
		return buildVersion
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	v := bi.Main.Version
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		}
	}
	// A pseudo-version (v0.0.0-20261201...-abcdef) only restates the
	// revision: show the revision itself.
	if v != "" && v != "(devel)" && !pseudoVersion.MatchString(v) {
		return v
	}
	if rev != "" {
		return "revision " + rev + modified
	}
	return "devel"
}
