//go:build !linux

package s3test

import "syscall"

// procAttr asks for nothing: only Linux kills a child with its parent
// (Pdeathsig); a killed test run may leave its server running.
func procAttr() *syscall.SysProcAttr { return nil }
