package server

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus metrics, served at /metrics.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.HistogramVec
	tasks     *prometheus.CounterVec
	bytes     prometheus.Counter
	seconds   prometheus.Histogram
	claims    prometheus.Counter
	takeovers prometheus.Counter
	running   prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "diskport_api_request_duration_seconds",
			Help: "EC2 API requests by action and error code (OK for success), and how long they took."}, []string{"action", "code"}),
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "diskport_tasks_finished_total",
			Help: "Conversion tasks this server finished, by final state (completed, cancelled)."}, []string{"state"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "diskport_converted_bytes_total",
			Help: "Bytes of virtual disk this server converted (not counting those resumed from a journal)."}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "diskport_volume_conversion_seconds",
			Help: "How long converting one volume took.", Buckets: prometheus.ExponentialBuckets(0.5, 2, 14)}),
		claims: prometheus.NewCounter(prometheus.CounterOpts{Name: "diskport_lease_claims_total",
			Help: "Tasks this server claimed."}),
		takeovers: prometheus.NewCounter(prometheus.CounterOpts{Name: "diskport_lease_takeovers_total",
			Help: "Tasks this server claimed from another server whose lease expired."}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{Name: "diskport_tasks_running",
			Help: "Conversion and bundle tasks running on this server now."}),
	}
	m.reg.MustRegister(m.requests, m.tasks, m.bytes, m.seconds, m.claims, m.takeovers, m.running,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// request records one API request.
func (m *metrics) request(action, code string, status int, d time.Duration) {
	if code == "" {
		code = "OK"
		if status != http.StatusOK {
			code = strconv.Itoa(status)
		}
	}
	m.requests.WithLabelValues(action, code).Observe(d.Seconds())
}

// opsMux serves the operational endpoints: /metrics (Prometheus),
// /healthz (the process answers) and /readyz (the store and the S3
// endpoint answer).
func (s *Server) opsMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.ready(r.Context()); err != nil {
			http.Error(w, "not ready: "+redact(err.Error()), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	return mux
}

// ready checks that the store and the S3 endpoint answer.
func (s *Server) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := s.st.AccountCount(ctx); err != nil {
		return err
	}
	if s.cfg.S3Endpoint == "" {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, s.cfg.S3Endpoint, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}
