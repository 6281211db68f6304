package pgtest

import (
	"net"
	"strconv"
	"testing"
)

// TestStartStop starts a server, reaches its port, restarts it.
func TestStartStop(t *testing.T) {
	s := Start(t)
	for range 2 {
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)))
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		s.Stop()
		s.Start()
	}
}
