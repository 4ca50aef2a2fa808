//go:build unix

package bench

import (
	"fmt"
	"syscall"
	"time"
)

// RaiseFileLimit lifts this process's soft open-file limit to its hard limit
// (every connection the bench holds is a file descriptor) and returns the
// limit it ends up with.
func RaiseFileLimit() (FileLimit, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return FileLimit{}, fmt.Errorf("bench: read the open-file limit: %w", err)
	}
	fl := FileLimit{Soft: lim.Cur, Hard: lim.Max}
	if lim.Cur >= lim.Max {
		return fl, nil
	}
	want := lim
	want.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		return fl, fmt.Errorf("bench: raise the open-file limit from %d to %d: %w", lim.Cur, lim.Max, err)
	}
	fl.Soft, fl.Raised = want.Cur, true
	return fl, nil
}

// selfCPU returns the CPU time (user + system) this process has used.
func selfCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
