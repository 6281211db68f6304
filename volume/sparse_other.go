//go:build !windows && (!linux || portable)

package volume

import (
	"errors"
	"os"
)

// punchesHoles says Zero leaves holes in a file rather than writing zeros:
// not here, where punching needs a call per OS (F_PUNCHHOLE on macOS,
// fspacectl on FreeBSD) with alignment rules of its own.
const punchesHoles = false

// SetSparse does nothing: a Unix file is sparse wherever it is not
// written, on every file system that can be.
func SetSparse(*os.File) error { return nil }

// errNoZeroRange sends Zero to writing zeros.
var errNoZeroRange = errors.New("volume: no portable way to punch a hole")

// punchHole has no portable call to make: Zero writes zeros.
func punchHole(*os.File, int64, int64) error { return errNoZeroRange }
