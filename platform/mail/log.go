package mail

import (
	"context"
	"fmt"
	"log/slog"
)

// LogSender is a Sender for development: instead of delivering a message it
// writes it, body included, to a slog.Logger at INFO level, so verification
// codes can be read from the server log. Never use it in production: message
// bodies may carry secrets.
type LogSender struct {
	logger *slog.Logger
}

var _ Sender = (*LogSender)(nil)

// NewLogSender returns a LogSender that writes to logger, or to slog.Default()
// when logger is nil.
func NewLogSender(logger *slog.Logger) *LogSender {
	if logger == nil {
		logger = slog.Default()
	}
	return &LogSender{logger: logger}
}

// Send logs m. It fails only when ctx is already done.
func (s *LogSender) Send(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mail: log sender: %w", err)
	}
	s.logger.LogAttrs(ctx, slog.LevelInfo, "mail: message logged, not delivered",
		slog.String("to", m.To),
		slog.String("subject", m.Subject),
		slog.String("body", m.Body),
	)
	return nil
}
