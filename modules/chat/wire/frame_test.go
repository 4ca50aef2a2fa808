package wire

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"unsafe"
)

func TestFrameRoundTripLengths(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 4, 5, 1024, MaxBodyLen - 1, MaxBodyLen} {
		body := bytes.Repeat([]byte{'x'}, n)
		buf, err := AppendFrame([]byte("prefix"), IDTextChatMsgReq, body)
		if err != nil {
			t.Fatalf("AppendFrame(%d bytes): %v", n, err)
		}
		if got, want := len(buf), len("prefix")+HeaderLen+n; got != want {
			t.Fatalf("AppendFrame(%d bytes) length = %d, want %d", n, got, want)
		}
		raw := buf[len("prefix"):]
		if raw[0] != 0x03 || raw[1] != 0xf9 || int(raw[2])<<8|int(raw[3]) != n {
			t.Fatalf("header for %d bytes = % x, want 03 f9 then big-endian length", n, raw[:4])
		}

		f, err := NewReader(bytes.NewReader(raw), MaxBodyLen).ReadFrame()
		if err != nil {
			t.Fatalf("ReadFrame(%d bytes): %v", n, err)
		}
		if f.ID != IDTextChatMsgReq || !bytes.Equal(f.Body, body) {
			t.Fatalf("ReadFrame(%d bytes) = id %v, %d-byte body", n, f.ID, len(f.Body))
		}

		frames, rest, err := ParseFrames(raw)
		if err != nil || len(frames) != 1 || len(rest) != 0 {
			t.Fatalf("ParseFrames(%d bytes) = %d frames, %d rest, %v", n, len(frames), len(rest), err)
		}
		if frames[0].ID != IDTextChatMsgReq || !bytes.Equal(frames[0].Body, body) {
			t.Fatalf("ParseFrames(%d bytes) returned a different frame", n)
		}
	}
}

func TestAppendFrameTooLarge(t *testing.T) {
	dst := []byte("keep")
	got, err := AppendFrame(dst, IDTextChatMsgReq, make([]byte, MaxBodyLen+1))
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("AppendFrame(65536 bytes) error = %v, want ErrFrameTooLarge", err)
	}
	if string(got) != "keep" {
		t.Fatalf("AppendFrame changed dst on error: %q", got)
	}
	if err := WriteFrame(io.Discard, IDTextChatMsgReq, make([]byte, MaxBodyLen+1)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("WriteFrame(65536 bytes) error = %v, want ErrFrameTooLarge", err)
	}
}

// countingWriter records each Write call.
type countingWriter struct {
	writes [][]byte
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, bytes.Clone(p))
	return len(p), nil
}

func TestWriteFrameSingleWrite(t *testing.T) {
	var w countingWriter
	body := []byte(`{"fromuid":1054}`)
	if err := WriteFrame(&w, IDHeartBeatReq, body); err != nil {
		t.Fatal(err)
	}
	if len(w.writes) != 1 {
		t.Fatalf("WriteFrame made %d Write calls, want 1", len(w.writes))
	}
	want, _ := AppendFrame(nil, IDHeartBeatReq, body)
	if !bytes.Equal(w.writes[0], want) {
		t.Fatalf("WriteFrame wrote % x, want % x", w.writes[0], want)
	}
}

func TestWriteFrameError(t *testing.T) {
	wantErr := errors.New("broken pipe")
	err := WriteFrame(failingWriter{wantErr}, IDHeartBeatReq, nil)
	if !errors.Is(err, wantErr) || !strings.Contains(err.Error(), "ID_HEART_BEAT_REQ") {
		t.Fatalf("WriteFrame error = %v, want it to wrap %v and name the id", err, wantErr)
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

// headerThenFail yields a header and fails the test if anything reads further.
type headerThenFail struct {
	t      *testing.T
	header []byte
}

func (r *headerThenFail) Read(p []byte) (int, error) {
	if len(r.header) == 0 {
		r.t.Error("Reader read past the header of an oversized frame")
		return 0, io.EOF
	}
	n := copy(p, r.header)
	r.header = r.header[n:]
	return n, nil
}

func TestReaderFrameTooLarge(t *testing.T) {
	header := []byte{0x03, 0xed, 0xff, 0xff} // 1005, 65535 bytes
	fr := NewReader(&headerThenFail{t: t, header: header}, 1024)
	_, err := fr.ReadFrame()
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("ReadFrame error = %v, want ErrFrameTooLarge", err)
	}
	if !strings.Contains(err.Error(), "MSG_CHAT_LOGIN") || !strings.Contains(err.Error(), "65535") {
		t.Errorf("error %q should name the id and the declared length", err)
	}

	// Rejecting the frame must not allocate anything near the declared size.
	const runs = 100
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		fr := NewReader(bytes.NewReader(header), 1024)
		if _, err := fr.ReadFrame(); !errors.Is(err, ErrFrameTooLarge) {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if perRun := (after.TotalAlloc - before.TotalAlloc) / runs; perRun > 4096 {
		t.Errorf("rejecting an oversized frame allocated %d bytes per call", perRun)
	}
}

func TestReaderMaxBody(t *testing.T) {
	frame, _ := AppendFrame(nil, IDChatLogin, make([]byte, 100))
	for _, tc := range []struct {
		max, want int
		tooLarge  bool
	}{
		{max: 100, want: 100},
		{max: 99, want: 99, tooLarge: true},
		{max: 0, want: MaxBodyLen},
		{max: -1, want: MaxBodyLen},
		{max: MaxBodyLen + 1, want: MaxBodyLen},
	} {
		fr := NewReader(bytes.NewReader(frame), tc.max)
		if fr.MaxBody() != tc.want {
			t.Errorf("NewReader(max %d).MaxBody() = %d, want %d", tc.max, fr.MaxBody(), tc.want)
		}
		_, err := fr.ReadFrame()
		if got := errors.Is(err, ErrFrameTooLarge); got != tc.tooLarge {
			t.Errorf("max %d: ReadFrame error = %v, want too large %v", tc.max, err, tc.tooLarge)
		}
	}

	// The limit can be raised between frames, e.g. after login.
	two := append(bytes.Clone(frame), frame...)
	fr := NewReader(bytes.NewReader(two), 10)
	fr.SetMaxBody(200)
	for i := range 2 {
		if _, err := fr.ReadFrame(); err != nil {
			t.Fatalf("frame %d after SetMaxBody: %v", i, err)
		}
	}
}

func TestReaderTruncated(t *testing.T) {
	frame, _ := AppendFrame(nil, IDHeartBeatReq, []byte(`{"fromuid":1}`))
	for n := range len(frame) {
		_, err := NewReader(bytes.NewReader(frame[:n]), 0).ReadFrame()
		if n == 0 {
			if err != io.EOF {
				t.Errorf("empty stream: error = %v, want io.EOF unwrapped", err)
			}
			continue
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("stream cut after %d of %d bytes: error = %v, want io.ErrUnexpectedEOF", n, len(frame), err)
		}
	}
}

func TestReaderUnderlyingError(t *testing.T) {
	wantErr := errors.New("connection reset")
	_, err := NewReader(iotest.ErrReader(wantErr), 0).ReadFrame()
	if !errors.Is(err, wantErr) {
		t.Fatalf("header read error = %v, want it to wrap %v", err, wantErr)
	}

	header := []byte{0x03, 0xf9, 0x00, 0x10}
	r := io.MultiReader(bytes.NewReader(header), iotest.ErrReader(wantErr))
	_, err = NewReader(r, 0).ReadFrame()
	if !errors.Is(err, wantErr) || !strings.Contains(err.Error(), "ID_TEXT_CHAT_MSG_REQ") {
		t.Fatalf("body read error = %v, want it to wrap %v and name the id", err, wantErr)
	}
}

// manyFrames returns n frames of assorted ids and sizes, and their encoding.
func manyFrames(n int) ([]Frame, []byte) {
	var frames []Frame
	var buf []byte
	for i := range n {
		f := Frame{
			ID:   MsgID(1005 + i%26),
			Body: []byte(strings.Repeat("你好", i%7)),
		}
		frames = append(frames, f)
		buf, _ = AppendFrame(buf, f.ID, f.Body)
	}
	return frames, buf
}

func TestReaderManyFrames(t *testing.T) {
	want, buf := manyFrames(500)
	readers := map[string]func() io.Reader{
		"whole":    func() io.Reader { return bytes.NewReader(buf) },
		"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(buf)) },
		"half":     func() io.Reader { return iotest.HalfReader(bytes.NewReader(buf)) },
		"data+EOF": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(buf)) },
	}
	for name, newReader := range readers {
		t.Run(name, func(t *testing.T) {
			fr := NewReader(newReader(), 0)
			for i, w := range want {
				f, err := fr.ReadFrame()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if f.ID != w.ID || !bytes.Equal(f.Body, w.Body) {
					t.Fatalf("frame %d = %v %q, want %v %q", i, f.ID, f.Body, w.ID, w.Body)
				}
			}
			if _, err := fr.ReadFrame(); err != io.EOF {
				t.Fatalf("after the last frame: error = %v, want io.EOF", err)
			}
		})
	}
}

func TestParseFrames(t *testing.T) {
	want, buf := manyFrames(100)
	frames, rest, err := ParseFrames(buf)
	if err != nil || len(rest) != 0 || len(frames) != len(want) {
		t.Fatalf("ParseFrames = %d frames, %d rest bytes, %v; want %d, 0, nil", len(frames), len(rest), err, len(want))
	}
	for i := range want {
		if frames[i].ID != want[i].ID || !bytes.Equal(frames[i].Body, want[i].Body) {
			t.Fatalf("frame %d differs", i)
		}
	}

	// A partial frame stays in rest, for every cut point of the last frame.
	last, _ := AppendFrame(nil, IDLoadChatMsgRsp, []byte(`{"error":0}`))
	for cut := range len(last) {
		in := append(bytes.Clone(buf), last[:cut]...)
		frames, rest, _ := ParseFrames(in)
		if len(frames) != len(want) || !bytes.Equal(rest, last[:cut]) {
			t.Fatalf("cut %d: %d frames, rest % x", cut, len(frames), rest)
		}
	}

	// Appending to one body must not overwrite the next frame.
	two, _ := AppendFrame(nil, IDHeartBeatReq, []byte("a"))
	two, _ = AppendFrame(two, IDHeartBeatRsp, []byte("b"))
	frames, _, _ = ParseFrames(two)
	_ = append(frames[0].Body, "XXXX"...)
	if frames[1].ID != IDHeartBeatRsp || string(frames[1].Body) != "b" {
		t.Fatal("appending to a body overwrote the following frame")
	}

	if frames, rest, err := ParseFrames(nil); len(frames) != 0 || len(rest) != 0 || err != nil {
		t.Fatalf("ParseFrames(nil) = %v, %v, %v", frames, rest, err)
	}
}

func TestFrameDecode(t *testing.T) {
	f := Frame{ID: IDHeartBeatReq, Body: []byte(`{"fromuid":"1054"}`)}
	var req HeartBeatReq
	if err := f.Decode(&req); err != nil || req.FromUID != 1054 {
		t.Fatalf("Decode = %+v, %v", req, err)
	}
	f.Body = []byte(`{"fromuid":true}`)
	err := f.Decode(&req)
	if err == nil || !strings.Contains(err.Error(), "ID_HEART_BEAT_REQ") || !strings.Contains(err.Error(), "fromuid") {
		t.Fatalf("Decode error = %v, want one naming the id and the field", err)
	}
}

func TestEncodeFrame(t *testing.T) {
	buf, err := EncodeFrame(IDAddFriendRsp, AddFriendRsp{})
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte{0x03, 0xf2, 0x00, 0x0b}, `{"error":0}`...)
	if !bytes.Equal(buf, want) {
		t.Fatalf("EncodeFrame = % x, want % x", buf, want)
	}
	if _, err := EncodeFrame(IDAddFriendRsp, func() {}); err == nil {
		t.Fatal("EncodeFrame(func) succeeded")
	}
	if _, err := EncodeFrame(IDTextChatMsgRsp, strings.Repeat("x", MaxBodyLen)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("EncodeFrame(oversized) error = %v, want ErrFrameTooLarge", err)
	}
}

// TestReaderSize guards the per-connection cost of an idle Reader: the source,
// the limit and the 4 header bytes, nothing more.
func TestReaderSize(t *testing.T) {
	if got, limit := unsafe.Sizeof(Reader{}), uintptr(32); got > limit {
		t.Fatalf("Reader is %d bytes, want at most %d", got, limit)
	}
}
