//go:build !unix

package bench

import (
	"errors"
	"time"
)

// RaiseFileLimit is not supported on this platform.
func RaiseFileLimit() (FileLimit, error) {
	return FileLimit{}, errors.New("bench: open-file limits are not supported on this platform")
}

// selfCPU is not supported on this platform.
func selfCPU() (time.Duration, bool) { return 0, false }
