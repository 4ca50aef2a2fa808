// Package mail delivers e-mail. Senders: Log (prints the message through slog;
// for development) and SMTP (none/starttls/tls, optional auth).
package mail

import "context"

// Message is one plain-text e-mail.
type Message struct {
	To      string
	Subject string
	Body    string
}

// Sender delivers a message or returns an error; it honours ctx's deadline.
type Sender interface {
	Send(ctx context.Context, m Message) error
}
