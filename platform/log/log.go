// Package log builds the process's *slog.Logger: human-readable text on a
// terminal, JSON lines otherwise or when asked.
package log

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"golang.org/x/term"
)

// New returns a logger writing to w at level ("debug", "info", "warn",
// "error") in format ("text", "json", or "auto": text when w is a terminal).
func New(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log: level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "auto", "":
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return slog.New(slog.NewTextHandler(w, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log: unknown format %q (want auto, text or json)", format)
	}
}

// Discard is a logger that drops everything (for tests that do not care).
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
