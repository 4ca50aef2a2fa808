// Package errcode is the table of numeric result codes that imsrv puts in the
// "error" field of every HTTP answer and TCP frame. 0-1013 are the llfc codes
// (clients depend on them); codes of imsrv's own start at 1100. The table is
// documented in docs/ERRORS.md; keep the two in step.
package errcode

// Code is a result code.
type Code int

// The llfc codes.
const (
	OK             Code = 0
	JSON           Code = 1001 // unparsable body or missing required field
	RPCFailed      Code = 1002 // an upstream module (verify, status, mail) is unavailable
	VarifyExpired  Code = 1003 // no code for this email: never requested, expired or used
	VarifyCodeErr  Code = 1004 // wrong verification code
	UserExist      Code = 1005 // user name or email taken
	PasswdErr      Code = 1006 // passwd and confirm differ
	EmailNotMatch  Code = 1007 // user name and email do not match
	PasswdUpFailed Code = 1008 // password update failed
	PasswdInvalid  Code = 1009 // wrong email or password
	TokenInvalid   Code = 1010 // chat login token invalid
	UIDInvalid     Code = 1011 // uid invalid / unknown / no token
	CreateChat     Code = 1012 // create chat (thread) failed
	LoadChat       Code = 1013 // load chat (thread, history) failed
)

// imsrv's own codes.
const (
	RateLimited     Code = 1100 // a rate limit or cap was reached; retry later
	InvalidArgument Code = 1101 // a field is present but invalid (email format, password length, ...)
	Forbidden       Code = 1102 // the caller may not do this
	Internal        Code = 1103 // unexpected server error (logged with details on the server)
)

var messages = map[Code]string{
	OK:              "ok",
	JSON:            "unparsable body or missing required field",
	RPCFailed:       "service temporarily unavailable",
	VarifyExpired:   "no verification code for this email (expired, used or never requested)",
	VarifyCodeErr:   "wrong verification code",
	UserExist:       "user name or email taken",
	PasswdErr:       "passwords do not match",
	EmailNotMatch:   "user name and email do not match",
	PasswdUpFailed:  "password update failed",
	PasswdInvalid:   "wrong email or password",
	TokenInvalid:    "token invalid",
	UIDInvalid:      "uid invalid",
	CreateChat:      "create chat failed",
	LoadChat:        "load chat failed",
	RateLimited:     "too many requests, try again later",
	InvalidArgument: "invalid argument",
	Forbidden:       "forbidden",
	Internal:        "internal server error",
}

// Message is the code's human-readable meaning.
func (c Code) Message() string {
	if m, ok := messages[c]; ok {
		return m
	}
	return "unknown error"
}
