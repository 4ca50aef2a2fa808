package wire

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// Benchmarks of the frame codec. Run with
//
//	go test -run '^$' -bench . -benchmem ./modules/chat/wire/
//
// Each benchmark has a "small" case (a typical 1017 text request, ~100 bytes
// of body) and a "large" one (a ~30 KB text, the size TestChatFlow sends).
// SetBytes counts whole frames (header and body), so MB/s is wire throughput.
// Results and how to read them are in docs/BENCHMARKS.md.

// benchBodies returns the two body sizes the benchmarks use.
func benchBodies(b *testing.B) []struct {
	name string
	body []byte
} {
	b.Helper()
	small := mustJSON(b, TextChatMsgReq{
		FromUID: 1054, ToUID: 1055,
		TextArray: []TextItem{{MsgID: "local-uuid-0001", Content: "你好，在吗？"}},
	})
	large := mustJSON(b, TextChatMsgReq{
		FromUID: 1054, ToUID: 1055,
		TextArray: []TextItem{{MsgID: "local-uuid-0002", Content: strings.Repeat("长", 10000)}}, // 30,000 bytes of UTF-8
	})
	return []struct {
		name string
		body []byte
	}{{"small", small}, {"large", large}}
}

func mustJSON(b *testing.B, v any) []byte {
	b.Helper()
	body, err := json.Marshal(v)
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// benchStream returns about 1 MiB of back-to-back frames carrying body (at
// least 16 frames) and how many frames it holds.
func benchStream(b *testing.B, body []byte) ([]byte, int) {
	b.Helper()
	n := max(16, (1<<20)/(HeaderLen+len(body)))
	stream := make([]byte, 0, n*(HeaderLen+len(body)))
	for range n {
		var err error
		if stream, err = AppendFrame(stream, IDTextChatMsgReq, body); err != nil {
			b.Fatal(err)
		}
	}
	return stream, n
}

// BenchmarkAppendFrame encodes one frame into a reused buffer, as the
// session writer does for a batch of queued frames.
func BenchmarkAppendFrame(b *testing.B) {
	for _, tc := range benchBodies(b) {
		b.Run(tc.name, func(b *testing.B) {
			buf := make([]byte, 0, HeaderLen+len(tc.body))
			b.SetBytes(int64(HeaderLen + len(tc.body)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = AppendFrame(buf[:0], IDTextChatMsgRsp, tc.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWriteFrame writes one frame to io.Discard: WriteFrame allocates
// the frame so that it goes out in a single Write.
func BenchmarkWriteFrame(b *testing.B) {
	for _, tc := range benchBodies(b) {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(HeaderLen + len(tc.body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := WriteFrame(io.Discard, IDTextChatMsgRsp, tc.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReadFrame reads one frame per operation from an in-memory stream
// of many frames (rewound when it runs out), as a session's reader does from
// its connection: two ReadFull calls and one body allocation per frame.
func BenchmarkReadFrame(b *testing.B) {
	for _, tc := range benchBodies(b) {
		b.Run(tc.name, func(b *testing.B) {
			stream, _ := benchStream(b, tc.body)
			src := bytes.NewReader(stream)
			r := NewReader(src, MaxBodyLen)
			b.SetBytes(int64(HeaderLen + len(tc.body)))
			b.ReportAllocs()
			for b.Loop() {
				f, err := r.ReadFrame()
				if err == io.EOF {
					src.Reset(stream)
					f, err = r.ReadFrame()
				}
				if err != nil || len(f.Body) != len(tc.body) {
					b.Fatalf("ReadFrame: %d-byte body, %v", len(f.Body), err)
				}
			}
		})
	}
}

// BenchmarkParseFrames splits a ~1 MiB buffer of back-to-back frames per
// operation; the ns/frame metric makes it comparable with ReadFrame.
func BenchmarkParseFrames(b *testing.B) {
	for _, tc := range benchBodies(b) {
		b.Run(tc.name, func(b *testing.B) {
			stream, n := benchStream(b, tc.body)
			b.SetBytes(int64(len(stream)))
			b.ReportAllocs()
			for b.Loop() {
				frames, rest, err := ParseFrames(stream)
				if err != nil || len(frames) != n || len(rest) != 0 {
					b.Fatalf("ParseFrames: %d frames, %d bytes left, %v", len(frames), len(rest), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/frame")
		})
	}
}

// BenchmarkEncodeFrame marshals a 1017 body to JSON and frames it: what a
// client (or the server, for a response) pays per frame, for comparison with
// the framing alone (BenchmarkAppendFrame).
func BenchmarkEncodeFrame(b *testing.B) {
	for _, tc := range benchBodies(b) {
		b.Run(tc.name, func(b *testing.B) {
			var req TextChatMsgReq
			if err := json.Unmarshal(tc.body, &req); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(HeaderLen + len(tc.body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := EncodeFrame(IDTextChatMsgReq, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFrameDecode unmarshals a 1017 body (Frame.Decode), the JSON half
// of what the server does with every request it reads.
func BenchmarkFrameDecode(b *testing.B) {
	for _, tc := range benchBodies(b) {
		b.Run(tc.name, func(b *testing.B) {
			f := Frame{ID: IDTextChatMsgReq, Body: tc.body}
			b.SetBytes(int64(HeaderLen + len(tc.body)))
			b.ReportAllocs()
			for b.Loop() {
				var req TextChatMsgReq
				if err := f.Decode(&req); err != nil || len(req.TextArray) != 1 {
					b.Fatalf("Decode: %v", err)
				}
			}
		})
	}
}
