// Package server is diskport's EC2 API server: the Query API actions of VM
// import (ImportVolume, ImportInstance, DescribeConversionTasks,
// CancelConversionTask), what a pipeline calls next (DescribeVolumes,
// DescribeInstances, DeleteVolume), and BundleInstance with
// DescribeBundleTasks and CancelBundleTask, converting and bundling for
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
// It logs one structured line per request and per task transition, never a
// signature, a secret or a presigned query string.
//
// For BundleInstance the server plays EC2's part: it bundles the
// instance's root volume, signs the bundle's manifest and encrypts its key
// with its own key pair, made on the first start at DIR/bundle.key and
// DIR/bundle.crt (an operator unbundles with the key), and stores the
// bundle with S3 POST under the caller's upload policy, which the S3
// server checks.
package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
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
	// Region names the default availability zone (REGION + "a"); "" means
	// us-east-1.
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
	S3Endpoint string
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
	// UploadPoll is the first wait before looking again for a manifest or
	// parts not uploaded yet (doubling up to 30 s); 0 means 1 s.
	UploadPoll time.Duration
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
	// bundleKey signs bundle manifests and decrypts their keys: EC2's
	// part in BundleInstance (DataDir/bundle.key, DataDir/bundle.crt).
	bundleKey *rsa.PrivateKey
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
	if err := os.MkdirAll(cfg.VolumeDir, 0o755); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	fp, err := newFetchPolicy(cfg.AllowFetch)
	if err != nil {
		return nil, err
	}
	key, err := loadBundleKey(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, st: cfg.Store, log: cfg.Logger, fetch: fp, bundleKey: key}
	s.verifier = &auth.Verifier{Lookup: s.lookupKey}
	s.pool = newPool(s)
	s.metrics = newMetrics()
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

// Start starts the conversion workers; they stop when ctx ends or Close
// is called.
func (s *Server) Start(ctx context.Context) { s.pool.start(ctx) }

// Close stops the conversion workers and waits for them. Conversions
// that were running stay active in the store and resume on the next
// Start.
func (s *Server) Close() { s.pool.stop() }

// VolumePath is where a volume's raw file lives.
func (s *Server) VolumePath(volumeID string) string {
	return filepath.Join(s.cfg.VolumeDir, volumeID+".raw")
}

// An apiError is a refused request, with EC2's code and HTTP status.
type apiError struct {
	Code, Message string
	Status        int
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errorf(code string, format string, args ...any) *apiError {
	status := http.StatusBadRequest
	switch code {
	case "InternalError":
		status = http.StatusInternalServerError
	case "ServiceUnavailable":
		status = http.StatusServiceUnavailable
	case "DryRunOperation":
		status = http.StatusPreconditionFailed
	}
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...), Status: status}
}

// A call is one request being answered.
type call struct {
	action, requestID string
	account           string
	params            url.Values
	// ids are the task, volume or instance ids the call touched, for the
	// log line.
	ids []string
}

type handler func(ctx context.Context, c *call) (response, error)

func (s *Server) handlers() map[string]handler {
	return map[string]handler{
		"ImportVolume":            s.importVolume,
		"ImportInstance":          s.importInstance,
		"DescribeConversionTasks": s.describeConversionTasks,
		"CancelConversionTask":    s.cancelConversionTask,
		"DescribeVolumes":         s.describeVolumes,
		"DescribeInstances":       s.describeInstances,
		"DeleteVolume":            s.deleteVolume,
		"BundleInstance":          s.bundleInstance,
		"DescribeBundleTasks":     s.describeBundleTasks,
		"CancelBundleTask":        s.cancelBundleTask,
	}
}

// supported lists the actions in the UnsupportedOperation message.
const supported = "ImportVolume, ImportInstance, DescribeConversionTasks, CancelConversionTask, DescribeVolumes, DescribeInstances, DeleteVolume, BundleInstance, DescribeBundleTasks, CancelBundleTask"

// ServeHTTP answers one EC2 Query API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && s.operate(w, r) {
		return
	}
	start := time.Now()
	c := &call{requestID: newRequestID()}
	body, err := s.serve(r, c)
	status := http.StatusOK
	code := ""
	if err != nil {
		var ae *apiError
		var aue *auth.Error
		switch {
		case errors.As(err, &ae):
		case errors.As(err, &aue):
			ae = &apiError{Code: aue.Code, Message: aue.Message, Status: aue.Status()}
		case store.Unavailable(err):
			s.log.Error("store unavailable", "request_id", c.requestID, "action", c.action, "error", redact(err.Error()))
			ae = errorf("ServiceUnavailable", "The service is unavailable: its database cannot be reached (request %s). Try again.", c.requestID)
		default:
			s.log.Error("internal error", "request_id", c.requestID, "action", c.action, "error", redact(err.Error()))
			ae = errorf("InternalError", "An internal error has occurred (request %s).", c.requestID)
		}
		status, code = ae.Status, ae.Code
		writeError(w, ae, c.requestID)
	} else {
		writeResponse(w, c, body)
	}
	attrs := []any{"request_id", c.requestID, "action", c.action, "account", c.account, "status", status,
		"duration_ms", float64(time.Since(start).Microseconds()) / 1000}
	if len(c.ids) > 0 {
		attrs = append(attrs, "ids", strings.Join(c.ids, ","))
	}
	if code != "" {
		attrs = append(attrs, "code", code)
	}
	s.log.Info("request", attrs...)
	action := c.action
	if _, known := s.handlers()[action]; !known {
		action = "other" // a client's arbitrary string is no label
	}
	s.metrics.request(action, code, status, time.Since(start))
}

// serve parses, authenticates and dispatches a request.
func (s *Server) serve(r *http.Request, c *call) (response, error) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return nil, &apiError{Code: "InvalidRequest", Message: "Use GET or POST.", Status: http.StatusMethodNotAllowed}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, errorf("InvalidRequest", "Reading the request body: %v.", err)
	}
	if len(body) > maxBody {
		return nil, errorf("InvalidRequest", "The request body is larger than %d bytes.", maxBody)
	}
	params, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, errorf("InvalidParameterValue", "The query string is malformed.")
	}
	if r.Method == http.MethodPost && len(body) > 0 {
		ct := strings.ToLower(r.Header.Get("Content-Type"))
		if !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
			return nil, errorf("InvalidRequest", "POST bodies must be application/x-www-form-urlencoded.")
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, errorf("InvalidParameterValue", "The form body is malformed.")
		}
		for k, v := range form {
			params[k] = append(params[k], v...)
		}
	}
	c.action = params.Get("Action")
	id, err := s.verifier.Verify(r.Context(), r, body, params)
	if err != nil {
		return nil, err
	}
	c.account, c.params = id.AccountID, params
	if c.action == "" {
		return nil, errorf("MissingParameter", "The request must contain the parameter Action.")
	}
	if params.Get("Version") == "" {
		return nil, errorf("MissingParameter", "The request must contain the parameter Version.")
	}
	h, ok := s.handlers()[c.action]
	if !ok {
		return nil, errorf("UnsupportedOperation", "The action %s is not supported by diskport; supported: %s.", c.action, supported)
	}
	if params.Get("DryRun") == "true" {
		return nil, errorf("DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
	}
	return h(r.Context(), c)
}

func writeResponse(w http.ResponseWriter, c *call, body response) {
	body.setRequestID(c.requestID)
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	start := xml.StartElement{Name: xml.Name{Local: c.action + "Response"}, Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: Namespace}}}
	if err := enc.EncodeElement(body, start); err != nil {
		writeError(w, errorf("InternalError", "Encoding the response failed."), c.requestID)
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Write(b.Bytes())
}

// A response is an action's answer: its fields sit directly under the
// <ActionResponse> element, after requestId (EC2 has no result wrapper).
type response interface{ setRequestID(string) }

// meta is embedded first in every response.
type meta struct {
	RequestID string `xml:"requestId"`
}

func (m *meta) setRequestID(id string) { m.RequestID = id }

type errorResponse struct {
	XMLName   xml.Name   `xml:"Response"`
	Errors    []errorXML `xml:"Errors>Error"`
	RequestID string     `xml:"RequestID"`
}

type errorXML struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func writeError(w http.ResponseWriter, e *apiError, requestID string) {
	b, _ := xml.Marshal(errorResponse{Errors: []errorXML{{e.Code, e.Message}}, RequestID: requestID})
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(e.Status)
	io.WriteString(w, xml.Header)
	w.Write(b)
}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// newID returns prefix followed by n random lower-case hex digits.
// Collisions are refused by the store's unique keys.
func newID(prefix string, n int) string {
	b := make([]byte, (n+1)/2)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)[:n]
}
