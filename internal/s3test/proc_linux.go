package s3test

import "syscall"

// procAttr has the kernel kill the server when the test process dies, so
// a killed test run leaves no server behind.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
