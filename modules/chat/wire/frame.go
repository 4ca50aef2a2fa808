package wire

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
)

const (
	// HeaderLen is the size of a frame header: a 2-byte id and a 2-byte body
	// length.
	HeaderLen = 4
	// MaxBodyLen is the largest body a frame can carry.
	MaxBodyLen = math.MaxUint16
)

// ErrFrameTooLarge reports a body longer than a frame may carry: longer than
// MaxBodyLen when building a frame, longer than the Reader's limit when
// reading one.
var ErrFrameTooLarge = errors.New("wire: frame body too large")

// Frame is one message: its id and its JSON body.
type Frame struct {
	ID   MsgID
	Body []byte
}

// Decode unmarshals the frame's JSON body into v.
func (f Frame) Decode(v any) error {
	if err := json.Unmarshal(f.Body, v); err != nil {
		return fmt.Errorf("wire: decode %v body: %w", f.ID, err)
	}
	return nil
}

// AppendFrame appends the frame (header and body) to dst and returns the
// extended slice. It fails with ErrFrameTooLarge when body is longer than
// MaxBodyLen, leaving dst unchanged.
func AppendFrame(dst []byte, id MsgID, body []byte) ([]byte, error) {
	if len(body) > MaxBodyLen {
		return dst, fmt.Errorf("wire: %v body is %d bytes, max %d: %w",
			id, len(body), MaxBodyLen, ErrFrameTooLarge)
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(id))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(body)))
	return append(dst, body...), nil
}

// WriteFrame writes the frame to w with a single Write call, so that
// concurrent writers serialised by a lock, or a connection shared without
// one, never interleave a header with another frame's body.
func WriteFrame(w io.Writer, id MsgID, body []byte) error {
	buf, err := AppendFrame(make([]byte, 0, HeaderLen+len(body)), id, body)
	if err != nil {
		return err
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("wire: write %v frame: %w", id, err)
	}
	return nil
}

// EncodeFrame marshals v to JSON and returns the complete frame.
func EncodeFrame(id MsgID, v any) ([]byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("wire: encode %v body: %w", id, err)
	}
	return AppendFrame(make([]byte, 0, HeaderLen+len(body)), id, body)
}

// Reader reads frames from a stream. It keeps no buffer between frames: while
// it waits for the next header it holds only the 4 header bytes, and each body
// is allocated at exactly its declared length once the header has arrived and
// the length has passed the limit. This keeps idle connections cheap; wrap the
// stream in a bufio.Reader if fewer read calls matter more than memory.
//
// A Reader is not safe for concurrent use. After an error other than io.EOF
// the position in the stream is unknown and the Reader must be discarded.
type Reader struct {
	r       io.Reader
	maxBody int
	hdr     [HeaderLen]byte
}

// NewReader returns a Reader that reads frames from r and rejects bodies
// longer than maxBody bytes. A maxBody outside 1..MaxBodyLen means MaxBodyLen.
func NewReader(r io.Reader, maxBody int) *Reader {
	fr := &Reader{r: r}
	fr.SetMaxBody(maxBody)
	return fr
}

// SetMaxBody changes the body limit for the frames read from now on, for
// example to allow larger frames once a connection has logged in. A value
// outside 1..MaxBodyLen means MaxBodyLen.
func (r *Reader) SetMaxBody(maxBody int) {
	if maxBody <= 0 || maxBody > MaxBodyLen {
		maxBody = MaxBodyLen
	}
	r.maxBody = maxBody
}

// MaxBody returns the current body limit.
func (r *Reader) MaxBody() int { return r.maxBody }

// ReadFrame reads the next frame. It returns io.EOF, unwrapped, when the
// stream ends cleanly between frames; an error wrapping io.ErrUnexpectedEOF
// when it ends inside a header or body; and an error wrapping
// ErrFrameTooLarge, before reading or allocating the body, when the declared
// length exceeds the limit. Errors from the underlying reader are wrapped.
func (r *Reader) ReadFrame() (Frame, error) {
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		if err == io.EOF {
			return Frame{}, io.EOF
		}
		return Frame{}, fmt.Errorf("wire: read frame header: %w", err)
	}
	id := MsgID(binary.BigEndian.Uint16(r.hdr[0:2]))
	n := int(binary.BigEndian.Uint16(r.hdr[2:4]))
	if n > r.maxBody {
		return Frame{}, fmt.Errorf("wire: %v frame declares a %d-byte body, limit %d: %w",
			id, n, r.maxBody, ErrFrameTooLarge)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r.r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, fmt.Errorf("wire: read %v frame body of %d bytes: %w", id, n, err)
	}
	return Frame{ID: id, Body: body}, nil
}

// ParseFrames splits buf into the complete frames at its start and returns
// them with the remaining bytes, which hold at most one incomplete frame. The
// bodies alias buf (capped so that appending to one cannot overwrite the
// next). Any 16-bit length is a valid frame, so err is always nil for now; it
// is there so that callers treat ParseFrames and Reader.ReadFrame alike and
// keep compiling if a check is added.
func ParseFrames(buf []byte) (frames []Frame, rest []byte, err error) {
	for len(buf) >= HeaderLen {
		n := int(binary.BigEndian.Uint16(buf[2:4]))
		end := HeaderLen + n
		if len(buf) < end {
			break
		}
		frames = append(frames, Frame{
			ID:   MsgID(binary.BigEndian.Uint16(buf[0:2])),
			Body: buf[HeaderLen:end:end],
		})
		buf = buf[end:]
	}
	return frames, buf, nil
}
