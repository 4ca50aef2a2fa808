//go:build !unix

package app

// raiseFileLimit is a no-op where there is no RLIMIT_NOFILE.
func (a *App) raiseFileLimit() {}
