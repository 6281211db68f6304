package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/diskport/diskport"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

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
	v := version
	if v == "" {
		v = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	fmt.Fprintf(stdout, "diskport %s %s/%s %s, inflate: %s\n", v, runtime.GOOS, runtime.GOARCH, runtime.Version(), diskport.Inflater())
	return nil
}
