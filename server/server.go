// Package server is diskport's EC2 API server: the Query API actions of VM
// import (ImportVolume, ImportInstance, DescribeConversionTasks,
// CancelConversionTask), what a pipeline calls next (DescribeVolumes,
// DescribeInstances, DeleteVolume), BundleInstance with
// DescribeBundleTasks and CancelBundleTask, and the VM Import API today's
// tools call (ImportSnapshot, ImportImage and their Describe and Cancel,
// the snapshots and images they make, tags), converting and bundling for
// real.
//
// Requests are EC2 Query API calls: POST form bodies or GET query strings
// with Action and Version, signed with SigV4 (service ec2, any region) or
// SigV2 (package auth). Responses are XML in EC2's namespace with a
// requestId and no result wrapper; errors use EC2's envelope
// <Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>
// with EC2's codes and HTTP statuses.
//
// State lives in a store.Store; conversions run in the background, a few
// at a time, from the store's queue of unfinished tasks, so a restarted
// server carries on where it stopped (a conversion resumes from its
// journal). Each imported volume is a sparse raw file at
// DIR/volumes/<volume-id>.raw, which a user attaches with a loop device
// (losetup) or hands to qemu.
//
// ImportSnapshot and ImportImage read their disks from the S3 endpoint
// (with the server's own S3 credentials) or an allowed https URL, as
// single-part manifests through the same import path, into snapshots at
// DIR/snapshots/<snapshot-id>.raw; ImportImage registers an image of
// them. Their tasks are conversion tasks of kinds of their own, leased
// and resumed as the others.
//
// As an extension of ImportInstance (AWS's ImportImage takes OVAs; its
// ImportInstance does not), a disk image may be a whole OVA appliance:
// Image.Format OVA, its manifest's file-format OVA (diskport upload
// --format ova), Image.Bytes the .ova's size. The worker reads the
// appliance in place from the parts (package ova) and converts every disk,
// in boot order, into its own volume: the disk image's volume holds the
// boot disk and must hold it (Volume.Size), and a volume is added to the
// task and the instance for each other disk, its disk's capacity rounded
// up to a whole GiB (at least 1), once, whatever restarts or takeovers
// the task sees. Each disk's .mf checksum is verified before its volume
// is committed; a mismatch fails the task naming the member. The instance
// keeps EC2's limit of 26 volumes, the added ones counted. ImportVolume
// takes an OVA of one disk only.
//
// The server fetches the manifest URLs its clients give it, so it fetches
// only http(s) URLs whose host:port is on its allow list, never follows a
// redirect off it, and never connects to a link-local or metadata address.
// It logs one structured line per request (at DEBUG for a Describe call
// that succeeds: clients poll with them) and per task transition (at WARN
// for an import that failed, with its reason), never a signature, a secret
// or a presigned query string.
//
// For BundleInstance the server plays EC2's part: it bundles the
// instance's root volume, signs the bundle's manifest and encrypts its key
// with its own key pair, made on the first start at DIR/bundle.key and
// DIR/bundle.crt (an operator unbundles with the key), and stores the
// bundle with S3 POST under the caller's upload policy, which the S3
// server checks.
//
// # Layout
//
// The package has two halves that meet in [Server]. The Query API parses,
// authenticates and answers requests: api.go (the request path, errors,
// the XML envelope), actions.go (the one table of actions), params.go,
// modernparams.go, xml.go, modernxml.go and bundlexml.go (the response
// shapes), and a file per group of actions (imports.go, describe.go,
// bundles.go, importsnapshot.go, importimage.go, snapshots.go,
// createvolume.go, images.go, tags.go, export.go). The workers run the
// tasks the API queues: worker.go (scheduling, leases, takeover,
// finishing), conversion.go, appliance.go, upload.go, modernsource.go and
// modernwork.go (the modern imports), exportwork.go, bundlework.go and
// bundleparts.go, all on a pool that holds only what they need (the
// store with a deadline on every call, the configuration, the logger,
// the metrics, the fetch policy and the bundle key), never the Server.
// They share a package rather than a sub-package because both halves use
// the fetch allow list, the redaction of URLs and the ids and size limits
// of the API; the API reaches the workers only through the pool's kick,
// cancel, cancelBundle and removeVolume. The operational endpoints
// (/healthz, /readyz, /metrics) are in metrics.go.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/diskport/diskport/server/auth"
	"github.com/diskport/diskport/server/store"
)

// Namespace is the XML namespace of every response.
const Namespace = "http://ec2.amazonaws.com/doc/2016-11-15/"

// maxBody bounds a request body: Query API calls are small.
const maxBody = 1 << 20

// Config says how a Server runs.
type Config struct {
	// Store keeps the state; DataDir holds the volumes (DataDir/volumes).
	Store   store.Store
	DataDir string
	// Region names the default availability zone (REGION + "a"), and
	// ImportVolume and ImportInstance refuse a zone of another region;
	// "" means us-east-1.
	Region string
	// Workers is how many conversions run at once; 0 means 2.
	Workers int
	// AllowFetch lists the host:port pairs manifest and part URLs may
	// name (a missing port is the scheme's default).
	AllowFetch []string
	// Logger receives one line per request and per task transition; nil
	// means slog.Default().
	Logger *slog.Logger
	// ProgressInterval is how often a running conversion's progress is
	// stored; 0 means 500 ms.
	ProgressInterval time.Duration
	// Expiration is how long a task may take; 0 means 7 days.
	Expiration time.Duration
	// S3Endpoint is where BundleInstance stores bundles (S3 POST under
	// the caller's upload policy); its host:port must be on AllowFetch.
	// ImportSnapshot and ImportImage read their UserBucket objects (and
	// s3:// Urls) there, with S3AccessKey and S3SecretKey, which stand
	// for EC2's vmimport service role: "" means the environment's
	// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and S3Region "" the
	// environment's AWS_REGION, else us-east-1).
	S3Endpoint                         string
	S3AccessKey, S3SecretKey, S3Region string
	// ServerID names this server in the store: the holder of its task
	// leases and of the volumes it converts. "" means HOSTNAME:DataDir.
	ServerID string
	// LeaseTimeout is how long a task's lease lasts without renewal
	// before another server may take the task over; 0 means 30 s.
	LeaseTimeout time.Duration
	// VolumeDir holds the volumes; "" means DataDir/volumes. Servers that
	// share it (one file system) resume each other's conversions from
	// their journals.
	VolumeDir string
	// SnapshotDir holds the snapshots (snap-ID.raw, sparse raw files of
	// their volume size); "" means DataDir/snapshots, or VolumeDir/snapshots
	// when VolumeDir is set: servers that share their volume directory
	// share their snapshots too, and any of them copies or exports one.
	SnapshotDir string
	// UploadPoll is the first wait before looking again for a manifest or
	// parts not uploaded yet (doubling up to 30 s); 0 means 1 s.
	UploadPoll time.Duration
	// Clock is what the server reads the time from: task creation and
	// expiration, leases, progress, signatures' skew; nil means time.Now.
	// Tests set it to move time without waiting. (A store.DB stamps its
	// own writes with its own clock: see store.DB.SetClock.)
	Clock func() time.Time
	// MetricsListen, when set, is the address /healthz, /readyz and
	// /metrics are served on, by Start, and the API's address no longer
	// answers them; "" serves them beside the API.
	MetricsListen string
	// MetricsListener, when set, is a listener already bound for the
	// operational endpoints, used in place of listening on MetricsListen:
	// a caller binds every address before it creates anything. Close
	// closes it.
	MetricsListener net.Listener
}

// A Server answers EC2 Query API requests and runs the conversions.
type Server struct {
	cfg      Config
	st       store.Store
	log      *slog.Logger
	verifier *auth.Verifier
	fetch    *fetchPolicy
	pool     *pool
	metrics  *metrics
	// ops serves /healthz, /readyz and /metrics; opsLn and opsSrv serve
	// it on Config.MetricsListen.
	ops    *http.ServeMux
	opsLn  net.Listener
	opsSrv *http.Server
}

// New returns a server; call Start to run its conversions and Close to
// stop them.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.DataDir == "" {
		return nil, errors.New("server: a store and a data directory are required")
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = 500 * time.Millisecond
	}
	if cfg.UploadPoll <= 0 {
		cfg.UploadPoll = time.Second
	}
	if cfg.Expiration <= 0 {
		cfg.Expiration = 7 * 24 * time.Hour
	}
	if cfg.LeaseTimeout <= 0 {
		cfg.LeaseTimeout = 30 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.SnapshotDir == "" && cfg.VolumeDir != "" {
		cfg.SnapshotDir = filepath.Join(cfg.VolumeDir, "snapshots")
	}
	if cfg.VolumeDir == "" {
		cfg.VolumeDir = filepath.Join(cfg.DataDir, "volumes")
	}
	if cfg.ServerID == "" {
		host, _ := os.Hostname()
		abs, err := filepath.Abs(cfg.DataDir)
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		cfg.ServerID = host + ":" + abs
	}
	if cfg.SnapshotDir == "" {
		cfg.SnapshotDir = filepath.Join(cfg.DataDir, "snapshots")
	}
	for _, dir := range []string{cfg.VolumeDir, cfg.SnapshotDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
	}
	fp, err := newFetchPolicy(cfg.AllowFetch)
	if err != nil {
		return nil, err
	}
	key, err := loadBundleKey(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, st: cfg.Store, log: cfg.Logger, fetch: fp, metrics: newMetrics()}
	s.verifier = &auth.Verifier{Lookup: s.lookupKey, Now: cfg.Clock}
	s.pool = newPool(cfg, s.metrics, fp, key)
	s.ops = s.opsMux()
	s.opsLn = cfg.MetricsListener
	if s.opsLn == nil && cfg.MetricsListen != "" {
		if s.opsLn, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			return nil, fmt.Errorf("server: metrics listener: %w", err)
		}
	}
	if s.opsLn != nil {
		s.opsSrv = &http.Server{Handler: s.ops, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	}
	return s, nil
}

func (s *Server) lookupKey(ctx context.Context, id string) (string, string, error) {
	k, err := s.st.AccessKey(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return "", "", auth.ErrUnknownKey
	}
	if err != nil {
		return "", "", err
	}
	return k.Secret, k.AccountID, nil
}

// Start starts the conversion workers, and serving the operational
// endpoints on Config.MetricsListen when it is set; they stop when ctx
// ends or Close is called.
func (s *Server) Start(ctx context.Context) {
	s.pool.start(ctx)
	if s.opsSrv != nil {
		go func() {
			if err := s.opsSrv.Serve(s.opsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("serving the metrics listener", "error", err.Error())
			}
		}()
	}
}

// Close stops the conversion workers and waits for them, and stops the
// metrics listener. Conversions that were running stay active in the
// store and resume on the next Start.
func (s *Server) Close() {
	if s.opsSrv != nil {
		s.opsSrv.Close()
	}
	s.pool.stop()
}

// MetricsAddr is the address the operational endpoints are served on
// apart from the API (Config.MetricsListen, with its port chosen when it
// asked for port 0), or nil when they are served beside the API.
func (s *Server) MetricsAddr() net.Addr {
	if s.opsLn == nil {
		return nil
	}
	return s.opsLn.Addr()
}

// VolumePath is where a volume's raw file lives.
func (s *Server) VolumePath(volumeID string) string { return s.pool.volumePath(volumeID) }

// ServeHTTP answers an EC2 Query API request, or, unless they have a
// listener of their own, a GET of /healthz, /readyz or /metrics. Only
// those exact paths are taken from the API: any other request, whatever
// its path, is an API call as before.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.opsSrv == nil && r.Method == http.MethodGet {
		if h, pattern := s.ops.Handler(r); pattern != "" && pattern == "GET "+r.URL.Path {
			h.ServeHTTP(w, r)
			return
		}
	}
	s.serveAPI(w, r)
}

// OpsHandler serves /healthz, /readyz and /metrics alone: for a caller
// that serves them itself, on an address of its choosing.
func (s *Server) OpsHandler() http.Handler { return s.ops }
