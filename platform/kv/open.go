package kv

import (
	"errors"
	"fmt"
	"net/url"
)

// Open returns the Store selected by a configuration URL:
//
//   - "" selects an in-process Memory store;
//   - redis://… and rediss://… (TLS) select a Redis store (see NewRedis).
//
// Any other scheme is an error naming that scheme. Errors never include the
// URL itself, since it may carry credentials.
func Open(rawURL string) (Store, error) {
	if rawURL == "" {
		return NewMemory(), nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("kv: invalid URL: %w", redactURLError(err))
	}
	switch u.Scheme {
	case "redis", "rediss":
		s, err := NewRedis(rawURL)
		if err != nil {
			return nil, err
		}
		return s, nil
	case "":
		return nil, errors.New("kv: URL has no scheme (want redis:// or rediss://)")
	default:
		return nil, fmt.Errorf("kv: unsupported URL scheme %q (want redis:// or rediss://)", u.Scheme)
	}
}

// redactURLError strips the offending URL, which may contain a password, from
// a *url.Error and returns only the underlying cause.
func redactURLError(err error) error {
	if uerr, ok := errors.AsType[*url.Error](err); ok {
		return uerr.Err
	}
	return err
}
