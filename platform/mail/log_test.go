package mail_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/imsrv/imsrv/platform/mail"
)

func TestLogSender(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	sender := mail.NewLogSender(slog.New(slog.NewTextHandler(&buf, nil)))
	msg := mail.Message{To: "alice@example.com", Subject: "Your code", Body: "Your code is 123456."}
	if err := sender.Send(t.Context(), msg); err != nil {
		t.Fatalf("Send: %v", err)
	}

	out := buf.String()
	for _, want := range []string{"level=INFO", "to=alice@example.com", `subject="Your code"`, `body="Your code is 123456."`} {
		if !strings.Contains(out, want) {
			t.Errorf("log output %q does not contain %q", out, want)
		}
	}
	if n := strings.Count(out, "\n"); n != 1 {
		t.Errorf("log output %q has %d records, want 1", out, n)
	}
}

func TestLogSenderCanceled(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	sender := mail.NewLogSender(slog.New(slog.NewTextHandler(&buf, nil)))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := sender.Send(ctx, mail.Message{To: "alice@example.com", Subject: "hi", Body: "x"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Send with canceled context = %v, want context.Canceled", err)
	}
	if buf.Len() != 0 {
		t.Errorf("canceled Send logged %q", buf.String())
	}
}
