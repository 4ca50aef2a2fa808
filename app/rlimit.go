//go:build unix

package app

import "syscall"

// raiseFileLimit lifts the soft open-file limit to the hard limit: every
// chat connection is a file descriptor. It logs the limit it ends up with.
func (a *App) raiseFileLimit() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		a.logger.Warn("cannot read the open-file limit", "err", err)
		return
	}
	if lim.Cur < lim.Max {
		want := lim
		want.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			a.logger.Warn("cannot raise the open-file limit", "soft", lim.Cur, "hard", lim.Max, "err", err)
			return
		}
		lim = want
	}
	a.logger.Info("open-file limit", "limit", lim.Cur, "note", "each chat connection uses one")
}
