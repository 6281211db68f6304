//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
	"github.com/diskport/diskport/internal/pgtest"
)

// cleanEnv is the environment without a first account's key pair, so
// that a server starting on a new data directory would make and print one.
func cleanEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "DISKPORT_") {
			env = append(env, e)
		}
	}
	return env
}

// TestServeBusyPort runs the binary with --listen, then --metrics-listen,
// on a port another listener holds: one error line naming the flag and
// the address, exit status 1, nothing on standard output (no key pair),
// and no data directory, database or key file made.
func TestServeBusyPort(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	for _, flags := range [][]string{
		{"--listen", addr},
		{"--listen", "127.0.0.1:0", "--metrics-listen", addr},
	} {
		dir := t.TempDir()
		cmd := exec.Command(bin, append([]string{"serve", "--data", filepath.Join(dir, "data"), "--s3-endpoint", "http://127.0.0.1:9"}, flags...)...)
		cmd.Env = cleanEnv()
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("serve %v on a busy port is still running", flags)
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("serve %v: %v, want exit status 1", flags, err)
		}
		flag := flags[len(flags)-2]
		want := "diskport: " + flag + " " + addr + ": bind: address already in use\n"
		if stderr.String() != want {
			t.Errorf("serve %v: standard error %q, want %q", flags, stderr.String(), want)
		}
		if stdout.Len() != 0 {
			t.Errorf("serve %v printed %q", flags, stdout.String())
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("serve %v on a busy port made %v", flags, ents)
		}
	}
}

// runCLI runs the binary and returns its exit status and output.
func runCLI(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = cleanEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// TestServeAccounts adds, lists, rotates and removes accounts with the
// binary beside a running server, on SQLite and on PostgreSQL: the list
// shows names and key ids and no secret, a rotated-out key and a removed
// account's key are refused by the running server at once, the new key
// works.
func TestServeAccounts(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		data := filepath.Join(t.TempDir(), "data")
		testServeAccounts(t, bin, []string{"--data", data}, data)
		// Only add makes a store: list on a directory without one says so
		// and leaves none.
		empty := t.TempDir()
		code, _, errOut := runCLI(t, bin, "serve", "accounts", "list", "--data", empty)
		if code != 1 || !strings.Contains(errOut, "holds no server database") {
			t.Errorf("list on an empty directory: exit %d, %q", code, errOut)
		}
		if ents, _ := os.ReadDir(empty); len(ents) != 0 {
			t.Errorf("list on an empty directory made %v", ents)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		if testing.Short() {
			t.Skip("long: starts PostgreSQL")
		}
		t.Parallel()
		pg := pgtest.Start(t)
		testServeAccounts(t, bin, []string{"--store", pg.URL}, filepath.Join(t.TempDir(), "data"))
	})
}

func testServeAccounts(t *testing.T, bin string, storeArgs []string, data string) {
	const key, secret = "AKIASERVEACCOUNTS001", "serve-accounts-secret"
	p := startServeArgs(t, bin, append([]string{"--data", data, "--s3-endpoint", "http://127.0.0.1:9"}, storeArgs...),
		"DISKPORT_ACCESS_KEY_ID="+key, "DISKPORT_SECRET_ACCESS_KEY="+secret)
	accounts := func(args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(t, bin, append(append([]string{"serve", "accounts"}, args...), storeArgs...)...)
		if code != 0 {
			t.Fatalf("serve accounts %v: exit %d, %s", args, code, errOut)
		}
		return out
	}
	keyPair := func(out string) (string, string) {
		t.Helper()
		lines := strings.Split(strings.TrimSpace(out), "\n")
		kp := strings.Fields(lines[len(lines)-1])
		if len(kp) != 2 || !strings.HasPrefix(kp[0], "AKIA") {
			t.Fatalf("no key pair as the last line of %q", out)
		}
		return kp[0], kp[1]
	}
	call := func(key, secret string) error {
		c := ec2.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(p.url), RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider(key, secret, "")})
		_, err := c.DescribeConversionTasks(context.Background(), &ec2.DescribeConversionTasksInput{})
		return err
	}
	refused := func(what string, err error) {
		t.Helper()
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "AuthFailure" {
			t.Errorf("%s: %v, want AuthFailure", what, err)
		}
	}

	bobKey, bobSecret := keyPair(accounts("add", "bob"))
	if err := call(bobKey, bobSecret); err != nil {
		t.Fatalf("bob's new key: %v", err)
	}
	list := accounts("list")
	if !regexp.MustCompile(`(?m)^bob +[0-9]{12} +`+bobKey+`$`).MatchString(list) ||
		!regexp.MustCompile(`(?m)^default +[0-9]{12} +`+key+`$`).MatchString(list) {
		t.Errorf("list:\n%s", list)
	}
	for _, s := range []string{secret, bobSecret} {
		if strings.Contains(list, s) {
			t.Errorf("list shows a secret:\n%s", list)
		}
	}

	newKey, newSecret := keyPair(accounts("rotate", "bob"))
	if newKey == bobKey {
		t.Fatal("rotate kept the key id")
	}
	refused("bob's rotated-out key", call(bobKey, bobSecret))
	if err := call(newKey, newSecret); err != nil {
		t.Fatalf("bob's rotated key: %v", err)
	}
	if list := accounts("list"); !strings.Contains(list, newKey) || strings.Contains(list, bobKey) {
		t.Errorf("list after the rotation:\n%s", list)
	}

	accounts("remove", "bob")
	refused("the removed account's key", call(newKey, newSecret))
	if err := call(key, secret); err != nil {
		t.Fatalf("the default account after bob's removal: %v", err)
	}
	if list := accounts("list"); strings.Contains(list, "bob") {
		t.Errorf("list after the removal:\n%s", list)
	}
	for _, sub := range []string{"remove", "rotate"} {
		code, out, errOut := runCLI(t, bin, append([]string{"serve", "accounts", sub, "bob"}, storeArgs...)...)
		if code != 1 || out != "" || !strings.Contains(errOut, `no account named "bob"`) {
			t.Errorf("%s of a removed account: exit %d, %q %q", sub, code, out, errOut)
		}
	}
}

// demoProbe is the path the API server's demo polls until the server is
// ready.
func demoProbe(t *testing.T) string {
	b, err := os.ReadFile("../../scripts/serve-demo.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`curl -[a-z]+ "\$api([^"]*)"`).FindSubmatch(b)
	if m == nil {
		t.Fatal("scripts/serve-demo.sh probes the server with no curl \"$api…\"")
	}
	return string(m[1])
}

// TestServeLogging runs the binary: by default (INFO, JSON) the demo's
// readiness probe and a polling Describe call log nothing, and a SIGTERM
// logs the shutdown and exits 0; --log-level and --log-format take either
// case (text at DEBUG logs the Describe call), beside a --metrics-listen
// that answers; a wrong value is a usage
// error that makes nothing.
func TestServeLogging(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	const key, secret = "AKIASERVELOGGING0001", "serve-logging-secret"
	env := []string{"DISKPORT_ACCESS_KEY_ID=" + key, "DISKPORT_SECRET_ACCESS_KEY=" + secret}
	describe := func(p *serveProc) {
		t.Helper()
		c := ec2.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(p.url), RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider(key, secret, "")})
		if _, err := c.DescribeConversionTasks(context.Background(), &ec2.DescribeConversionTasksInput{}); err != nil {
			t.Fatal(err)
		}
	}

	p := startServeArgs(t, bin, []string{"--data", filepath.Join(t.TempDir(), "data"), "--s3-endpoint", "http://127.0.0.1:9"}, env...)
	resp, err := http.Get(p.url + demoProbe(t))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	describe(p)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("serve after SIGTERM: %v, want exit status 0", err)
	}
	log := p.log()
	if strings.Contains(log, "AuthFailure") || strings.Contains(log, "DescribeConversionTasks") {
		t.Errorf("the readiness probe or a polling call was logged at INFO:\n%s", log)
	}
	if !regexp.MustCompile(`(?m)^\{.*"level":"INFO","msg":"shutting down","reason":"[^"]*terminated[^"]*"\}$`).MatchString(log) {
		t.Errorf("no shutdown line naming the signal:\n%s", log)
	}

	// A free port for --metrics-listen, which the server binds itself.
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metrics := free.Addr().String()
	free.Close()
	p = startServeArgs(t, bin, []string{"--data", filepath.Join(t.TempDir(), "data"), "--s3-endpoint", "http://127.0.0.1:9",
		"--log-level", "DEBUG", "--log-format", "Text", "--metrics-listen", metrics}, env...)
	describe(p)
	httpGet(t, "http://"+metrics+"/healthz", http.StatusOK)
	if err := waitLog(p, "level=DEBUG msg=request"); err != nil || !strings.Contains(p.log(), "action=DescribeConversionTasks") {
		t.Errorf("--log-level DEBUG --log-format Text: %v\n%s", err, p.log())
	}

	for _, bad := range [][]string{{"--log-level", "verbose"}, {"--log-format", "xml"}} {
		dir := t.TempDir()
		code, out, errOut := runCLI(t, bin, append([]string{"serve", "--data", filepath.Join(dir, "data"), "--s3-endpoint", "http://127.0.0.1:9"}, bad...)...)
		if code != 2 || out != "" || !strings.Contains(errOut, bad[0]+" must be") {
			t.Errorf("serve %v: exit %d, %q %q", bad, code, out, errOut)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("serve %v made %v", bad, ents)
		}
	}
}

// waitLog waits until the server's log holds s.
func waitLog(p *serveProc, s string) error {
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.log(), s); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return errors.New("no " + s + " in the log")
		}
	}
	return nil
}
