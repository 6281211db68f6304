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

// nestedSubs lists the subcommands of subcommands, which a command's subs
// do not hold: `serve accounts add|list|remove|rotate`.
var nestedSubs = map[string][]string{
	"serve":          {"accounts"},
	"serve accounts": {"add", "list", "remove", "rotate"},
}

// runCompletion runs `diskport completion`.
func runCompletion(c *command, args []string) error {
	pos, err := c.parse(c.flags(), args, 1, 1)
	if err != nil {
		return err
	}
	nodes := completionNodes()
	switch pos[0] {
	case "bash":
		writeBash(stdout, nodes)
	case "zsh":
		// zsh runs bash completion functions through bashcompinit.
		fmt.Fprintln(stdout, "#compdef diskport\nautoload -U +X bashcompinit && bashcompinit")
		writeBash(stdout, nodes)
	case "fish":
		writeFish(stdout, nodes)
	default:
		return usageError("unknown shell %q (want bash, zsh or fish)", pos[0])
	}
	return nil
}

// A completionNode is what completion knows of a verb or subcommand
// ("manifest create", "serve accounts add"): the flags its own --help
// lists, and its subcommands.
type completionNode struct {
	path    string // "convert", "manifest create"
	summary string
	flags   []string
	subs    []string
}

// depth returns how many words the node's path has.
func (n completionNode) depth() int { return strings.Count(n.path, " ") + 1 }

// helpFlag matches a flag line of --help output ("  -format string").
var helpFlag = regexp.MustCompile(`(?m)^  -([A-Za-z0-9-]+)`)

// completionNodes lists every verb and subcommand, verbs first in name
// order, each with the flags its own --help shows.
func completionNodes() []completionNode {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	saved, savedErr := stdout, stderr
	defer func() { stdout, stderr = saved, savedErr }()
	stderr = io.Discard
	help := func(c *command, words []string) []string {
		var b bytes.Buffer
		stdout = &b
		c.run(c, append(words, "--help"))
		fs := flagNames(b.String())
		sort.Strings(fs)
		return compactStrings(fs)
	}
	var nodes []completionNode
	var walk func(c *command, words []string, summary string)
	walk = func(c *command, words []string, summary string) {
		path := strings.Join(append([]string{c.name}, words...), " ")
		subs := nestedSubs[path]
		if len(words) == 0 && len(c.subs) > 0 {
			subs = c.subs
		}
		n := completionNode{path: path, summary: summary, subs: subs}
		if len(words) > 0 || len(c.subs) == 0 {
			n.flags = help(c, words) // a verb with subcommands has no flags of its own
		}
		nodes = append(nodes, n)
		for _, s := range subs {
			walk(c, append(append([]string{}, words...), s), "")
		}
	}
	for _, name := range names {
		walk(commands[name], nil, commands[name].summary)
	}
	return nodes
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

// verbNames returns the names of the top-level nodes.
func verbNames(nodes []completionNode) []string {
	var names []string
	for _, n := range nodes {
		if n.depth() == 1 {
			names = append(names, n.path)
		}
	}
	return names
}

// writeBash writes the bash completion function: it finds the deepest
// verb or subcommand the words so far name, and offers that one's flags,
// or its subcommands, or file names.
func writeBash(w io.Writer, nodes []completionNode) {
	verbs := verbNames(nodes)
	fmt.Fprintf(w, `# diskport completion for bash: source <(diskport completion bash)
_diskport() {
	local cur=${COMP_WORDS[COMP_CWORD]} key="" w i flags="" subs=""
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case "${key:+$key }$w" in
		%s) key="${key:+$key }$w" ;;
		esac
	done
	case "$key" in
	"") COMPREPLY=($(compgen -W %q -- "$cur")); return ;;
	help) subs=%q ;;
`, bashAlternatives(nodes), strings.Join(verbs, " ")+" help --version --help", strings.Join(verbs, " "))
	for _, n := range nodes {
		fmt.Fprintf(w, "\t%q) flags=%q; subs=%q ;;\n", n.path, strings.TrimSpace(dashed(n.flags)+" --help"), strings.Join(n.subs, " "))
	}
	fmt.Fprint(w, `	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$flags" -- "$cur"))
	elif [ -n "$subs" ] && [ "${COMP_WORDS[COMP_CWORD-1]}" = "${key##* }" ]; then
		COMPREPLY=($(compgen -W "$subs" -- "$cur"))
	else
		COMPREPLY=($(compgen -f -- "$cur"))
	fi
}
complete -o default -o filenames -F _diskport diskport
`)
}

// bashAlternatives returns the case pattern matching every node's path
// and help.
func bashAlternatives(nodes []completionNode) string {
	alts := []string{"help"}
	for _, n := range nodes {
		alts = append(alts, fmt.Sprintf("%q", n.path))
	}
	return strings.Join(alts, "|")
}

// writeFish writes the fish completions: each node's subcommands and flags
// under the condition that its path, and none of its subcommands, has
// been typed.
func writeFish(w io.Writer, nodes []completionNode) {
	verbs := verbNames(nodes)
	fmt.Fprintln(w, "# diskport completion for fish: diskport completion fish | source")
	fmt.Fprintln(w, "complete -c diskport -f -n __fish_use_subcommand -a help -d 'show the commands, or one command\\'s flags'")
	for _, n := range nodes {
		words := strings.Fields(n.path)
		if len(words) == 1 {
			fmt.Fprintf(w, "complete -c diskport -f -n __fish_use_subcommand -a %s -d %s\n", n.path, fishQuote(n.summary))
		}
		var conds []string
		for _, x := range words {
			conds = append(conds, "__fish_seen_subcommand_from "+x)
		}
		if len(n.subs) > 0 {
			conds = append(conds, "not __fish_seen_subcommand_from "+strings.Join(n.subs, " "))
		}
		cond := strings.Join(conds, "; and ")
		for _, s := range n.subs {
			fmt.Fprintf(w, "complete -c diskport -f -n '%s' -a %s\n", cond, s)
		}
		for _, f := range n.flags {
			opt := "-l " + f
			if len(f) == 1 {
				opt = "-s " + f
			}
			fmt.Fprintf(w, "complete -c diskport -F -n '%s' %s\n", cond, opt)
		}
	}
	fmt.Fprintf(w, "complete -c diskport -f -n '__fish_seen_subcommand_from help' -a '%s'\n", strings.Join(verbs, " "))
}

// fishQuote quotes s for fish, in single quotes.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
