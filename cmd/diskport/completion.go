package main

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
)

func init() {
	register(&command{
		name:    "completion",
		summary: "print a shell completion script: source <(diskport completion bash)",
		usage:   "completion bash|zsh|fish",
		run:     runCompletion,
	})
}

// runCompletion runs `diskport completion`.
func runCompletion(c *command, args []string) error {
	pos, err := c.parse(c.flags(), args, 1, 1)
	if err != nil {
		return err
	}
	verbs := completionVerbs()
	switch pos[0] {
	case "bash":
		writeBash(stdout, verbs)
	case "zsh":
		// zsh runs bash completion functions through bashcompinit.
		fmt.Fprintln(stdout, "#compdef diskport\nautoload -U +X bashcompinit && bashcompinit")
		writeBash(stdout, verbs)
	case "fish":
		writeFish(stdout, verbs)
	default:
		return usageError("unknown shell %q (want bash, zsh or fish)", pos[0])
	}
	return nil
}

// completionVerb is what completion knows of a verb: its flags, as its
// --help lists them, and its subcommands.
type completionVerb struct {
	name, summary string
	flags, subs   []string
}

// helpFlag matches a flag line of --help output ("  -format string").
var helpFlag = regexp.MustCompile(`(?m)^  -([A-Za-z0-9-]+)`)

// completionVerbs lists every verb with the flags its --help shows.
func completionVerbs() []completionVerb {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	saved := stdout
	defer func() { stdout = saved }()
	var vs []completionVerb
	for _, n := range names {
		c := commands[n]
		v := completionVerb{name: n, summary: c.summary, subs: c.subs}
		help := []string{"--help"}
		if len(c.subs) > 0 {
			help = nil // the subcommands' flags
			for _, s := range c.subs {
				var b bytes.Buffer
				stdout = &b
				c.run(c, []string{s, "--help"})
				v.flags = append(v.flags, flagNames(b.String())...)
			}
		}
		if help != nil {
			var b bytes.Buffer
			stdout = &b
			c.run(c, help)
			v.flags = flagNames(b.String())
		}
		sort.Strings(v.flags)
		v.flags = compactStrings(v.flags)
		vs = append(vs, v)
	}
	return vs
}

func flagNames(help string) []string {
	var fs []string
	for _, m := range helpFlag.FindAllStringSubmatch(help, -1) {
		fs = append(fs, m[1])
	}
	return fs
}

func compactStrings(s []string) []string {
	var out []string
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// dashed returns the flags as a user types them: -p, --format.
func dashed(flags []string) string {
	var w []string
	for _, f := range flags {
		if len(f) == 1 {
			w = append(w, "-"+f)
		} else {
			w = append(w, "--"+f)
		}
	}
	return strings.Join(w, " ")
}

func writeBash(w io.Writer, verbs []completionVerb) {
	var names []string
	for _, v := range verbs {
		names = append(names, v.name)
	}
	names = append(names, "help")
	fmt.Fprintf(w, `# diskport completion for bash: source <(diskport completion bash)
_diskport() {
	local cur=${COMP_WORDS[COMP_CWORD]} verb=${COMP_WORDS[1]} flags="" subs=""
	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W "%s --version" -- "$cur"))
		return
	fi
	case "$verb" in
`, strings.Join(names, " "))
	for _, v := range verbs {
		fmt.Fprintf(w, "\t%s) flags=%q; subs=%q ;;\n", v.name, dashed(v.flags)+" --help", strings.Join(v.subs, " "))
	}
	fmt.Fprintf(w, "\thelp) subs=%q ;;\n", strings.Join(names[:len(names)-1], " "))
	fmt.Fprint(w, `	esac
	if [ "$COMP_CWORD" -eq 2 ] && [ -n "$subs" ] && [[ $cur != -* ]]; then
		COMPREPLY=($(compgen -W "$subs" -- "$cur"))
	elif [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$flags" -- "$cur"))
	else
		COMPREPLY=($(compgen -f -- "$cur"))
	fi
}
complete -o default -o filenames -F _diskport diskport
`)
}

func writeFish(w io.Writer, verbs []completionVerb) {
	var names []string
	for _, v := range verbs {
		names = append(names, v.name)
	}
	fmt.Fprintln(w, "# diskport completion for fish: diskport completion fish | source")
	fmt.Fprintln(w, "complete -c diskport -f -n __fish_use_subcommand -a help -d 'show the commands, or one command\\'s flags'")
	for _, v := range verbs {
		fmt.Fprintf(w, "complete -c diskport -f -n __fish_use_subcommand -a %s -d %s\n", v.name, fishQuote(v.summary))
		cond := "__fish_seen_subcommand_from " + v.name
		for _, s := range v.subs {
			fmt.Fprintf(w, "complete -c diskport -f -n '%s' -a %s\n", cond, s)
		}
		for _, f := range v.flags {
			opt := "-l " + f
			if len(f) == 1 {
				opt = "-s " + f
			}
			fmt.Fprintf(w, "complete -c diskport -F -n '%s' %s\n", cond, opt)
		}
	}
	fmt.Fprintf(w, "complete -c diskport -f -n '__fish_seen_subcommand_from help' -a '%s'\n", strings.Join(names, " "))
}

// fishQuote quotes s for fish, in single quotes.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
