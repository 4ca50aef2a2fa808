package kv

import (
	"errors"
	"fmt"
	"time"
)

// ErrWrongType is returned when an operation is applied to a key holding the
// other kind of value (a string operation on a hash or vice versa), mirroring
// Redis's WRONGTYPE error.
var ErrWrongType = errors.New("kv: operation against a key holding the wrong kind of value")

// ErrNotInteger is returned by Incr and HIncrBy when the stored value is not a
// base-10 64-bit integer or the result would overflow, mirroring Redis's
// "value is not an integer or out of range" error.
var ErrNotInteger = errors.New("kv: value is not an integer or out of range")

// checkTTL rejects negative TTLs; 0 means "no expiry" and any positive
// duration is a relative expiry.
func checkTTL(ttl time.Duration) error {
	if ttl < 0 {
		return fmt.Errorf("kv: negative ttl %v", ttl)
	}
	return nil
}
