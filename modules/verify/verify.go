// Package verify owns e-mail verification codes: generate, store with a TTL,
// deliver by mail, check, and rate-limit. This file is the module's contract:
// the Service interface, its request types and sentinel errors. The in-process
// implementation is Module (module.go); a gRPC client satisfies the same
// interface when verify runs in another process.
package verify

import (
	"context"
	"errors"
)

// Sentinel errors. Callers compare with errors.Is; they keep their identity
// across a gRPC hop.
var (
	// ErrInvalidEmail: the address is not a plausible e-mail address.
	ErrInvalidEmail = errors.New("verify: invalid e-mail address")
	// ErrRateLimited: the per-email or per-client-address send cap is reached; no mail was sent.
	ErrRateLimited = errors.New("verify: too many codes requested")
	// ErrNoCode: no live code for this email (never requested, expired, used, or
	// invalidated after too many wrong attempts).
	ErrNoCode = errors.New("verify: no code for this e-mail")
	// ErrWrongCode: a live code exists but the given one differs.
	ErrWrongCode = errors.New("verify: wrong code")
	// ErrDelivery: the code could not be delivered (mail relay failed).
	ErrDelivery = errors.New("verify: code delivery failed")
)

// SendRequest asks for a code to be mailed to Email. ClientAddr is the
// requesting client's address (IP), used for the per-address cap; empty skips it.
type SendRequest struct {
	Email      string
	ClientAddr string
}

// Service is the verify module's contract.
type Service interface {
	// SendCode mails a fresh 4-digit code, or re-sends the live one (its
	// expiry unchanged). Errors: ErrInvalidEmail, ErrRateLimited, ErrDelivery.
	SendCode(ctx context.Context, req SendRequest) error
	// CheckCode tells whether code is the live code for email without using it
	// up. A wrong code counts as an attempt; the code is invalidated after the
	// configured number of wrong attempts. Errors: ErrNoCode, ErrWrongCode.
	CheckCode(ctx context.Context, email, code string) error
	// ConsumeCode atomically uses up the code: of concurrent callers with the
	// right code exactly one succeeds. Errors: ErrNoCode, ErrWrongCode.
	ConsumeCode(ctx context.Context, email, code string) error
}
