package parts

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestStorageCloseStopsFetches: Close cancels a fetch that is waiting on
// a server that never answers, the read waiting on it fails, and reads
// after Close fail with ErrClosed.
func TestStorageCloseStopsFetches(t *testing.T) {
	f, _, _ := created(t, 1<<20, 256<<10)
	arrived := make(chan struct{}, 16)
	cancelled := make(chan struct{}, 16)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done() // never answers: only the client can end it
		cancelled <- struct{}{}
	}))
	defer hs.Close()
	c := f
	c.Parts = append([]Part(nil), f.Parts...)
	for i := range c.Parts {
		c.Parts[i].GetURL = hs.URL + "/bkt/" + c.Parts[i].Key
	}
	s, err := OpenStorage(context.Background(), c, &HTTPStore{IdleTimeout: time.Hour}, StorageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error, 1)
	go func() {
		_, err := s.ReadAt(make([]byte, 10), 0)
		readErr <- err
	}()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("no fetch reached the server")
	}
	closed := make(chan struct{})
	go func() {
		s.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return: a fetch in flight was not stopped")
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the server's request was not cancelled by Close")
	}
	select {
	case err := <-readErr:
		if err == nil {
			t.Fatal("the read waiting on the stopped fetch succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the read waiting on the stopped fetch did not return")
	}
	if _, err := s.ReadAt(make([]byte, 10), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after Close: %v, want ErrClosed", err)
	}
	if _, _, err := s.NextData(0); !errors.Is(err, ErrClosed) {
		t.Fatalf("NextData after Close: %v, want ErrClosed", err)
	}
}

// TestStorageContextEnds: the context given to OpenStorage ending stops
// the fetches too, and the reads report it.
func TestStorageContextEnds(t *testing.T) {
	f, _, _ := created(t, 1<<20, 256<<10)
	arrived := make(chan struct{}, 16)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	}))
	defer hs.Close()
	c := f
	c.Parts = append([]Part(nil), f.Parts...)
	for i := range c.Parts {
		c.Parts[i].GetURL = hs.URL + "/bkt/" + c.Parts[i].Key
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := OpenStorage(ctx, c, &HTTPStore{IdleTimeout: time.Hour}, StorageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	<-arrived
	cancel()
	if _, err := s.ReadAt(make([]byte, 10), 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("read after the context ended: %v, want context.Canceled", err)
	}
}
