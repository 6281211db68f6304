package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/diskport/diskport/internal/flock"
	"github.com/diskport/diskport/internal/logtext"
	"github.com/diskport/diskport/server"
	"github.com/diskport/diskport/server/store"
)

const serveUsage = `serve --data DIR --s3-endpoint URL [--store postgres://…|sqlite:FILE] [--volumes DIR] [--lease-timeout 30s] [--server-id ID] [--listen 127.0.0.1:8773] [--region R] [--workers N] [--allow-fetch HOST:PORT,...] [--tls-cert F --tls-key F] [--metrics-listen ADDR] [--log-level debug|info|warn|error] [--log-format json|text]
       diskport ` + serveAccountsUsage

func init() {
	register(&command{
		name:    "serve",
		summary: "run the EC2 API server: VM import (ImportVolume, ImportInstance) and BundleInstance",
		usage:   serveUsage,
		run:     runServe,
	})
}

// runServe runs `diskport serve` and `diskport serve accounts …`.
func runServe(c *command, args []string) error {
	if len(args) > 0 && args[0] == "accounts" {
		return runServeAccounts(args[1:])
	}
	return serveAPI(c, args)
}

// serveAPI runs the server until a signal stops it. It binds its
// addresses before it creates or prints anything: a server that cannot
// listen leaves no data directory, account or key behind.
func serveAPI(c *command, args []string) error {
	fs := c.flags()
	listen := fs.String("listen", "127.0.0.1:8773", "address to listen on")
	data := fs.String("data", "", "data directory: the database (diskport.db), the volumes (volumes/VOLUME-ID.raw) and the bundle key pair (bundle.key, bundle.crt)")
	s3 := fs.String("s3-endpoint", "", "the S3 endpoint import manifests live on and BundleInstance stores bundles to (its host:port is the default fetch allow list)")
	region := fs.String("region", "us-east-1", "the region: its first zone is the default availability zone, and a zone of another region is refused")
	workers := fs.Int("workers", 2, "conversion and bundle tasks run at once")
	allow := fs.String("allow-fetch", "", "comma-separated host:port list manifest and part URLs may name (default: the --s3-endpoint's)")
	cert := fs.String("tls-cert", "", "serve HTTPS with this PEM certificate (with --tls-key)")
	key := fs.String("tls-key", "", "the PEM private key of --tls-cert")
	storeURL := fs.String("store", "", "where the state lives: postgres://… (a database several servers share) or sqlite:FILE (default: sqlite in --data)")
	volumes := fs.String("volumes", "", "the volume directory (default DATA/volumes); servers sharing one resume each other's conversions from their journals")
	lease := fs.Duration("lease-timeout", 30*time.Second, "how long a task's lease lasts unrenewed before another server may take the task over")
	serverID := fs.String("server-id", "", "this server's name in the store (default HOSTNAME:DATA)")
	metricsListen := fs.String("metrics-listen", "", "serve /healthz, /readyz and /metrics on this address, over HTTP, instead of beside the API")
	logLevel := fs.String("log-level", "info", "the least severe log lines written to standard error: debug (every request, polling included), info, warn or error")
	logFormat := fs.String("log-format", "json", "the log lines' form: json (one object a line) or text (key=value)")
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *data == "" {
		return usageError("--data is required")
	}
	if *workers < 1 {
		return usageError("--workers must be at least 1")
	}
	if (*cert == "") != (*key == "") {
		return usageError("--tls-cert and --tls-key go together")
	}
	allowList, err := fetchAllowList(*allow, *s3)
	if err != nil {
		return err
	}
	if *lease < time.Second {
		return usageError("--lease-timeout must be at least 1s")
	}
	log, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	var tlsConfig *tls.Config
	if *cert != "" {
		pair, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			return fmt.Errorf("--tls-cert %s, --tls-key %s: %w", *cert, *key, err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{pair}}
	}
	ln, err := listenFlag("--listen", *listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	var mln net.Listener
	if *metricsListen != "" {
		if mln, err = listenFlag("--metrics-listen", *metricsListen); err != nil {
			return err
		}
		defer mln.Close()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	st, unlock, err := openData(ctx, *data, *storeURL)
	if err != nil {
		return err
	}
	defer unlock()
	defer st.Close()
	k, generated, err := server.FirstAccount(ctx, st, os.Getenv("DISKPORT_ACCESS_KEY_ID"), os.Getenv("DISKPORT_SECRET_ACCESS_KEY"))
	if err != nil {
		return err
	}
	if generated {
		fmt.Fprintf(stdout, "created the first account, \"default\"; its key pair (shown only now):\n%s %s\n", k.ID, k.Secret)
	}
	srv, err := server.New(server.Config{Store: st, DataDir: *data, Region: *region, Workers: *workers, AllowFetch: allowList,
		S3Endpoint: *s3, Logger: log, LeaseTimeout: *lease, ServerID: *serverID, VolumeDir: *volumes,
		MetricsListener: mln})
	if err != nil {
		return err
	}
	srv.Start(ctx)
	defer srv.Close()
	hs := &http.Server{Handler: srv, TLSConfig: tlsConfig, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "serving the EC2 API on %s://%s (data %s, fetching from %s)\n", scheme, ln.Addr(), *data, strings.Join(allowList, ","))
	if a := srv.MetricsAddr(); a != nil {
		fmt.Fprintf(stdout, "serving /healthz, /readyz and /metrics on http://%s\n", a)
	}
	errc := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			errc <- hs.ServeTLS(ln, "", "")
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "reason", context.Cause(ctx).Error())
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	srv.Close()
	log.Info("stopped")
	return nil
}

// listenFlag listens on the address a flag gave, saying which flag and
// address in its error.
func listenFlag(flag, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Err != nil {
			err = oe.Err // "bind: address already in use", without the address again
		}
		return nil, fmt.Errorf("%s %s: %w", flag, addr, err)
	}
	return ln, nil
}

// newLogger returns the server's logger: --log-level and --log-format,
// either case.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "info":
		l = slog.LevelInfo
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		return nil, usageError("--log-level must be debug, info, warn or error, not %q", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch strings.ToLower(format) {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, usageError("--log-format must be json or text, not %q", format)
}

// fetchAllowList is --allow-fetch split, or the S3 endpoint's host:port.
func fetchAllowList(allow, s3 string) ([]string, error) {
	if allow != "" {
		return strings.Split(allow, ","), nil
	}
	if s3 == "" {
		return nil, usageError("give --s3-endpoint (or --allow-fetch): the server fetches manifests only from listed hosts")
	}
	u, err := url.Parse(s3)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError("--s3-endpoint must be an http(s) URL, not %q", s3)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return []string{net.JoinHostPort(u.Hostname(), port)}, nil
}

// openData holds an exclusive lock on dir/lock (created if needed) so
// that two servers never share a data directory, and opens the store.
func openData(ctx context.Context, dir, storeURL string) (*store.DB, func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, err
	}
	if err := flock.Lock(f, false); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("data directory %s is in use by another diskport serve", dir)
	}
	st, err := openStore(ctx, dir, storeURL)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return st, func() { f.Close() }, nil
}

// openStore opens --store: postgres://… or postgresql://…, sqlite:FILE,
// or "" for the SQLite database in dir.
func openStore(ctx context.Context, dir, storeURL string) (*store.DB, error) {
	switch {
	case storeURL == "":
		return store.Open(dir)
	case strings.HasPrefix(storeURL, "postgres://"), strings.HasPrefix(storeURL, "postgresql://"):
		return store.OpenPostgres(ctx, storeURL)
	case strings.HasPrefix(storeURL, "sqlite:"):
		path := strings.TrimPrefix(storeURL, "sqlite:")
		if path == "" {
			return nil, usageError("--store sqlite: needs a file name")
		}
		return store.OpenFile(path)
	}
	return nil, usageError("--store must be postgres://…, postgresql://… or sqlite:FILE, not %q", logtext.RedactPassword(storeURL))
}
