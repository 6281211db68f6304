// Command diskport turns virtual-machine disk images into raw cloud volumes.
//
// Usage:
//
//	diskport <command> [flags] [args]
//
// Run `diskport help` for the list of commands and `diskport <command>
// --help` for one. Exit status: 0 on success, 1 on failure (one line on
// stderr starting with "diskport:"), 2 on a usage error.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/internal/logtext"
)

// A command is one verb of the CLI. Each verb has its own file, X.go, which
// registers it in init and holds its runX function; helpers that several
// verbs use live in files named for what they do (open.go, progress.go,
// size.go, split.go, keys.go, credentials.go, manifestimage.go), and no
// verb file uses a name another verb file defines.
type command struct {
	name    string
	summary string                                // one line for `diskport help`
	usage   string                                // the synopsis after "diskport ", e.g. "info [--format F] IMAGE"
	run     func(c *command, args []string) error // the verb: runX in X.go
	subs    []string                              // the verb's subcommands, if it has them (manifest create, ...)
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("diskport: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// usageErr is an error in how the command was called: exit status 2.
type usageErr struct{ msg string }

func (e *usageErr) Error() string { return e.msg }

// usageError returns a usage error (exit status 2).
func usageError(format string, args ...any) error {
	return &usageErr{fmt.Sprintf(format, args...)}
}

// Stdout and stderr are variables so tests can capture them.
var (
	stdout io.Writer = os.Stdout
	stderr io.Writer = os.Stderr
)

// memoryLimit is the soft limit on the Go heap (unless GOMEMLIMIT is
// set): conversions hold bounded buffers, and the limit keeps the garbage
// collector from letting the heap grow to twice what is live.
const memoryLimit = 96 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	os.Exit(run(os.Args[1:]))
}

// run executes the command line and returns the exit status.
func run(args []string) int {
	if len(args) == 0 {
		printHelp(stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			c, ok := commands[args[1]]
			if !ok {
				fmt.Fprintf(stderr, "diskport help: unknown command %q (run 'diskport help')\n", args[1])
				return 2
			}
			return run(append([]string{c.name}, append(args[2:], "--help")...))
		}
		printHelp(stdout)
		return 0
	case "-version", "--version", "-V":
		name = "version"
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "diskport: unknown command %q (run 'diskport help')\n", name)
		return 2
	}
	err := c.run(c, args[1:])
	var ue *usageErr
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "diskport %s: %s\nusage: diskport %s\n", c.name, ue.msg, c.usage)
		return 2
	default:
		fmt.Fprintf(stderr, "diskport: %s\n", logtext.RedactURLs(logtext.OneLine(err.Error())))
		return 1
	}
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "diskport turns virtual-machine disk images into raw cloud volumes.")
	fmt.Fprintln(w, "\nUsage: diskport <command> [flags] [args]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nImage formats: "+diskport.FormatNames()+"; and an OVA appliance's disks (--disk picks one).")
	fmt.Fprintln(w, "A MANIFEST is a path, a directory holding one manifest, an http(s) URL or s3://BUCKET/KEY.")
	fmt.Fprintln(w, "\nRun 'diskport help <command>' or 'diskport <command> --help' for a command's flags;")
	fmt.Fprintln(w, "'diskport --version' for the version.")
}

// flags returns a FlagSet for c whose --help prints c's usage and flags to
// stdout, and whose parse errors are usage errors.
func (c *command) flags() *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parse parses args with fs and checks the number of positional arguments
// is within [minArgs, maxArgs] (maxArgs < 0: no limit). Flags may follow
// positional arguments, as in qemu-img.
func (c *command) parse(fs *flag.FlagSet, args []string, minArgs, maxArgs int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(stdout, "usage: diskport %s\n\n%s\n", c.usage, c.summary)
				documented := false
				fs.VisitAll(func(f *flag.Flag) { documented = documented || f.Usage != "" })
				if documented { // a verb without flags shows no empty section
					fmt.Fprint(stdout, "\nFlags:\n")
					fs.SetOutput(stdout)
					printFlags(fs)
				}
				return nil, flag.ErrHelp
			}
			return nil, usageError("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) < minArgs || (maxArgs >= 0 && len(pos) > maxArgs) {
		return nil, usageError("wrong number of arguments (%d)", len(pos))
	}
	return pos, nil
}
