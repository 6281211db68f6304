package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestHelpVersion: help of an unknown verb is a usage error; --version is
// version, which names the module version, the Go version and the
// inflater. (TestVersionTagged checks a version set at build time.)
func TestHelpVersion(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	if code, out := exitCode(t, bin, "help", "nosuch"); code != 2 || !strings.Contains(out, `"nosuch"`) {
		t.Errorf("help nosuch: exit %d, %s", code, out)
	}
	if code, out := exitCode(t, bin, "help", "convert"); code != 0 || !strings.Contains(out, "usage: diskport convert") {
		t.Errorf("help convert: exit %d, %s", code, out)
	}
	code, v := exitCode(t, bin, "version")
	if code != 0 || !strings.HasPrefix(v, "diskport ") || !strings.Contains(v, runtime.Version()) || !strings.Contains(v, "inflate: ") {
		t.Errorf("version: exit %d, %s", code, v)
	}
	if code, out := exitCode(t, bin, "--version"); code != 0 || out != v {
		t.Errorf("--version: exit %d, %q, want %q", code, out, v)
	}
	for v, pseudo := range map[string]bool{"v0.0.0-20261201221700-abcdefabcdef": true, "v1.2.4-0.20261201221700-abcdefabcdef+dirty": true, "v1.2.3": false} {
		if pseudoVersion.MatchString(v) != pseudo {
			t.Errorf("pseudoVersion(%q) = %v", v, !pseudo)
		}
	}
}

// TestVersionTagged: a version set at build time is the one --version
// prints.
func TestVersionTagged(t *testing.T) {
	if testing.Short() {
		t.Skip("long: links a second diskport binary")
	}
	t.Parallel()
	tagged := filepath.Join(t.TempDir(), "diskport")
	if out, err := exec.Command("go", "build", "-ldflags", "-X main.buildVersion=v1.2.3", "-o", tagged, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	if _, out := exitCode(t, tagged, "--version"); !strings.HasPrefix(out, "diskport v1.2.3 (") {
		t.Errorf("tagged --version: %s", out)
	}
}

// TestCompletion runs the bash script in bash: verbs, subcommands (serve
// accounts add|list|remove|rotate too) and each one's own flags complete. The zsh script is the bash one behind bashcompinit, and
// the fish script is checked as text (neither shell is installed here).
func TestCompletion(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	code, script := exitCode(t, bin, "completion", "bash")
	if code != 0 {
		t.Fatalf("completion bash: exit %d, %s", code, script)
	}
	f := filepath.Join(t.TempDir(), "c.bash")
	os.WriteFile(f, []byte(script), 0o644)
	complete := func(words ...string) string {
		t.Helper()
		w := strings.Join(words, " ")
		out, err := exec.Command("bash", "-c", `source "$1"; COMP_WORDS=($2); COMP_CWORD=$3; _diskport; echo "${COMPREPLY[@]}"`, "-", f, w, string(rune('0'+len(words)-1))).CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v: %s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"diskport", "con"}, "convert"},
		{[]string{"diskport", "manifest", "v"}, "verify"},
		{[]string{"diskport", "policy", "s"}, "sign"},
		{[]string{"diskport", "convert", "--volume-s"}, "--volume-size"},
		{[]string{"diskport", "upload", "--work"}, "--workers"},
		{[]string{"diskport", "help", "unb"}, "unbundle"},
		// Every subcommand, nested ones too, and each offered only its
		// own flags.
		{[]string{"diskport", "serve", "acc"}, "accounts"},
		{[]string{"diskport", "serve", "accounts", "r"}, "remove rotate"},
		{[]string{"diskport", "serve", "accounts", "l"}, "list"},
		{[]string{"diskport", "serve", "accounts", "add", "--da"}, "--data"},
		{[]string{"diskport", "serve", "accounts", "add", "--list"}, ""},
		{[]string{"diskport", "serve", "--tls-c"}, "--tls-cert"},
		{[]string{"diskport", "serve", "accounts", "add", "--tls-c"}, ""},
		{[]string{"diskport", "manifest", "create", "--na"}, "--name --naming"},
		{[]string{"diskport", "manifest", "create", "--bu"}, ""},
		{[]string{"diskport", "manifest", "verify", "--bu"}, "--bucket"},
		{[]string{"diskport", "manifest", "show", "--wor"}, ""},
		{[]string{"diskport", "policy", "create", "--sig"}, ""},
		{[]string{"diskport", "policy", "check", "--sig"}, "--signature"},
		{[]string{"diskport", "policy", "create", "--bucket", "b", "--unsi"}, "--unsigned"},
		{[]string{"diskport", "manifest", "--na"}, ""},
	} {
		if got := complete(tc.words...); got != tc.want {
			t.Errorf("complete %v = %q, want %q", tc.words, got, tc.want)
		}
	}
	if got := complete("diskport", "upload", "--para"); got != "" {
		t.Errorf("the hidden --parallel completes: %q", got)
	}
	if code, z := exitCode(t, bin, "completion", "zsh"); code != 0 || !strings.HasPrefix(z, "#compdef diskport\n") || !strings.Contains(z, "bashcompinit") || !strings.Contains(z, "complete -o default") {
		t.Errorf("completion zsh: exit %d, %s", code, z)
	}
	code, fish := exitCode(t, bin, "completion", "fish")
	if code != 0 || !strings.Contains(fish, "complete -c diskport -f -n __fish_use_subcommand -a convert -d ") ||
		!strings.Contains(fish, "complete -c diskport -F -n '__fish_seen_subcommand_from convert' -l volume-size") ||
		!strings.Contains(fish, "-n '__fish_seen_subcommand_from manifest; and not __fish_seen_subcommand_from create verify show' -a verify") ||
		!strings.Contains(fish, "-n '__fish_seen_subcommand_from manifest; and __fish_seen_subcommand_from verify' -l workers") ||
		strings.Contains(fish, "-n '__fish_seen_subcommand_from manifest; and __fish_seen_subcommand_from create' -l workers") ||
		!strings.Contains(fish, "-n '__fish_seen_subcommand_from serve; and __fish_seen_subcommand_from accounts; and not __fish_seen_subcommand_from add list remove rotate' -a rotate") {
		t.Errorf("completion fish: exit %d, %s", code, fish)
	}
	if code, _ := exitCode(t, bin, "completion", "tcsh"); code != 2 {
		t.Errorf("completion tcsh: exit %d, want 2", code)
	}
}
