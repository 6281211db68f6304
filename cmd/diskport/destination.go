package main

import (
	"errors"

	"github.com/diskport/diskport/volume"
)

// existsHint gives a destination that exists the CLI's advice, the same in
// every verb that writes a volume (convert, unbundle).
func existsHint(err error) error {
	var ee *volume.ExistsError
	if errors.As(err, &ee) {
		return &hinted{"destination " + ee.Path + " exists (give --force to overwrite it)", err}
	}
	return err
}
