package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/diskport/diskport/server/auth"
	"github.com/diskport/diskport/server/store"
)

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

// serveAPI answers one EC2 Query API request.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	start := s.cfg.Clock()
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
		"duration_ms", float64(s.cfg.Clock().Sub(start).Microseconds()) / 1000}
	if len(c.ids) > 0 {
		attrs = append(attrs, "ids", strings.Join(c.ids, ","))
	}
	if code != "" {
		attrs = append(attrs, "code", code)
	}
	s.log.Log(context.Background(), requestLevel(c.action, status), "request", attrs...)
	action := c.action
	if _, known := actionIndex[action]; !known {
		action = "other" // a client's arbitrary string is no label
	}
	s.metrics.request(action, code, status, s.cfg.Clock().Sub(start))
}

// requestLevel is the level of a request's log line: a Describe call a
// client polls with logs at DEBUG when it succeeds, lest a pipeline
// waiting on a task fill the log; every other request at INFO.
func requestLevel(action string, status int) slog.Level {
	if strings.HasPrefix(action, "Describe") && status == http.StatusOK {
		return slog.LevelDebug
	}
	return slog.LevelInfo
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
	a, ok := actionIndex[c.action]
	if !ok {
		return nil, errorf("UnsupportedOperation", "The action %s is not supported by diskport; supported: %s.", c.action, supported)
	}
	if params.Get("DryRun") == "true" {
		return nil, errorf("DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
	}
	return a.handle(s, r.Context(), c)
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
