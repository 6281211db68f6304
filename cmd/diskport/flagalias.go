package main

import (
	"flag"
	"fmt"
	"strings"
)

// workersFlag registers --workers, the one name of parallelism in every
// verb, with def as its default, and the verb's old names for it as
// hidden aliases: scripts written for older diskport keep working, and
// only --workers is documented.
func workersFlag(fs *flag.FlagSet, def int, usage string, old ...string) *int {
	n := fs.Int("workers", def, usage)
	for _, o := range old {
		alias(fs, o, "workers")
	}
	return n
}

// alias registers old as a hidden alias of the flag named name: accepted,
// not shown by --help.
func alias(fs *flag.FlagSet, old, name string) {
	fs.Var(fs.Lookup(name).Value, old, "")
}

// printFlags prints fs's documented flags (those with a usage text) to w's
// FlagSet output, as flag.PrintDefaults does.
func printFlags(fs *flag.FlagSet) {
	shown := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	shown.SetOutput(fs.Output())
	fs.VisitAll(func(f *flag.Flag) {
		if f.Usage != "" {
			shown.Var(f.Value, f.Name, f.Usage)
			shown.Lookup(f.Name).DefValue = f.DefValue
		}
	})
	shown.PrintDefaults()
}

// choice is a flag taking one of a few values, in any case: its value is
// the listed spelling of the one given.
type choice struct {
	value   string
	choices []string
}

// choiceFlag registers a choice flag with the given values, the first
// the default.
func choiceFlag(fs *flag.FlagSet, name, usage string, choices ...string) *string {
	c := &choice{value: choices[0], choices: choices}
	fs.Var(c, name, usage)
	return &c.value
}

func (c *choice) String() string {
	if c == nil {
		return ""
	}
	return c.value
}

func (c *choice) Set(s string) error {
	for _, x := range c.choices {
		if strings.EqualFold(s, x) {
			c.value = x
			return nil
		}
	}
	return fmt.Errorf("want %s, not %q", strings.Join(c.choices, " or "), s)
}
