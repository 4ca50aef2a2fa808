// Package wire is the TCP wire format of the chat service: the llfc frame,
// the message ids and the JSON bodies of every message in both directions.
//
// A frame is a 4-byte header followed by a body:
//
//	0-1  message id, uint16 big-endian
//	2-3  body length, uint16 big-endian
//	4-   body: UTF-8 JSON, 0..65535 bytes
//
// The package has no state and starts no goroutines. Reader reads frames from
// a stream without buffering beyond the frame being read, so an idle
// connection costs a few bytes; AppendFrame, WriteFrame and EncodeFrame build
// frames; ParseFrames splits a byte slice that holds several frames.
//
// Body types are named after their message ids (IDTextChatMsgReq carries a
// TextChatMsgReq). Bodies sent by clients use Int32 and SearchKey for fields
// that the llfc clients do not type consistently; bodies sent by the server
// use plain Go types and always encode list fields as arrays, never null.
// Both generations of the llfc protocol share these types: a response carries
// the union of both generations' fields and clients ignore what they do not
// know.
package wire
