package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
)

// seedFrames adds every sample body as a frame, a stream of all of them, and
// a few malformed inputs.
func seedFrames(f *testing.F, add func(data []byte)) {
	f.Helper()
	var stream []byte
	for _, s := range samples() {
		frame, err := EncodeFrame(s.id, s.body)
		if err != nil {
			f.Fatal(err)
		}
		add(frame)
		stream = append(stream, frame...)
	}
	add(stream)
	add(nil)
	add([]byte{0x03, 0xed})                   // truncated header
	add([]byte{0x03, 0xed, 0x00, 0x10, '{'})  // truncated body
	add([]byte{0x03, 0xed, 0xff, 0xff})       // largest declared body, absent
	add([]byte{0x00, 0x00, 0x00, 0x00, 0x01}) // empty frame, then garbage
}

func FuzzReadFrame(f *testing.F) {
	seedFrames(f, func(data []byte) {
		f.Add(data, uint16(0))
		f.Add(data, uint16(16))
	})
	f.Fuzz(func(t *testing.T, data []byte, maxBody uint16) {
		fr := NewReader(bytes.NewReader(data), int(maxBody))
		var consumed []byte
		for {
			frame, err := fr.ReadFrame()
			if err != nil {
				switch {
				case err == io.EOF:
					if !bytes.Equal(consumed, data) {
						t.Fatalf("io.EOF after %d of %d bytes", len(consumed), len(data))
					}
				case errors.Is(err, io.ErrUnexpectedEOF):
					if len(data)-len(consumed) == 0 {
						t.Fatal("io.ErrUnexpectedEOF at the end of a complete stream")
					}
				case errors.Is(err, ErrFrameTooLarge):
					if n := int(data[len(consumed)+2])<<8 | int(data[len(consumed)+3]); n <= fr.MaxBody() {
						t.Fatalf("ErrFrameTooLarge for %d bytes, limit %d", n, fr.MaxBody())
					}
				default:
					t.Fatalf("unexpected error %v", err)
				}
				break
			}
			if len(frame.Body) > fr.MaxBody() {
				t.Fatalf("%d-byte body exceeds the limit %d", len(frame.Body), fr.MaxBody())
			}
			consumed, err = AppendFrame(consumed, frame.ID, frame.Body)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(data, consumed) {
				t.Fatal("re-encoded frames differ from the input")
			}
		}

		// With no limit the Reader and ParseFrames agree.
		frames, rest, err := ParseFrames(data)
		if err != nil {
			t.Fatal(err)
		}
		fr = NewReader(bytes.NewReader(data), MaxBodyLen)
		for i, want := range frames {
			got, err := fr.ReadFrame()
			if err != nil || got.ID != want.ID || !bytes.Equal(got.Body, want.Body) {
				t.Fatalf("frame %d: Reader and ParseFrames disagree (%v)", i, err)
			}
		}
		if _, err := fr.ReadFrame(); (len(rest) == 0) != (err == io.EOF) {
			t.Fatalf("after %d frames with %d bytes left: %v", len(frames), len(rest), err)
		}
	})
}

func FuzzParseFrames(f *testing.F) {
	seedFrames(f, func(data []byte) { f.Add(data) })
	f.Fuzz(func(t *testing.T, data []byte) {
		frames, rest, err := ParseFrames(data)
		if err != nil {
			t.Fatal(err)
		}
		var again []byte
		for _, frame := range frames {
			if again, err = AppendFrame(again, frame.ID, frame.Body); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(append(again, rest...), data) {
			t.Fatal("frames and rest do not add up to the input")
		}
		if len(rest) >= HeaderLen {
			if n := int(rest[2])<<8 | int(rest[3]); len(rest) >= HeaderLen+n {
				t.Fatalf("a complete frame of %d bytes was left in rest", n)
			}
		}
	})
}

// FuzzBodies decodes arbitrary bytes into every body type, client and server
// alike. Decoding must not panic, and whatever decodes must re-encode to JSON
// that decodes and encodes to the same bytes again.
func FuzzBodies(f *testing.F) {
	for _, s := range samples() {
		b, err := json.Marshal(s.body)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, seed := range []string{
		`{"uid":"1054","token":"t","caps":["coalesce"]}`,
		`{"uid":1055}`, `{"uid":"小明"}`, `{"uid":-1}`, `{"uid":1e3}`,
		`{"fromuid":"abc"}`, `{"fromuid":null,"touid":[]}`,
		`{"text_array":null,"thread_id":"7"}`,
		`{"text_array":[{"msgid":1}]}`, `{"uid":"\ud800"}`,
		`null`, `[]`, `"x"`, `{}`, `{"UID":"1","Uid":2}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, s := range samples() {
			v := newBody(s.body)
			if json.Unmarshal(data, v) != nil {
				continue
			}
			first, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("%v: re-encoding a decoded body: %v", s.id, err)
			}
			w := newBody(s.body)
			if err := json.Unmarshal(first, w); err != nil {
				t.Fatalf("%v: decoding our own encoding %s: %v", s.id, first, err)
			}
			second, err := json.Marshal(w)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(first, second) {
				t.Fatalf("%v: encoding is not stable:\n%s\n%s", s.id, first, second)
			}
		}
	})
}
