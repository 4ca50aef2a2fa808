package wire_test

import (
	"bytes"
	"fmt"
	"io"
	"log"

	"github.com/imsrv/imsrv/modules/chat/wire"
)

func ExampleEncodeFrame() {
	frame, err := wire.EncodeFrame(wire.IDHeartBeatReq, wire.HeartBeatReq{FromUID: 1054})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("% x | %s\n", frame[:wire.HeaderLen], frame[wire.HeaderLen:])
	// Output: 03 ff 00 10 | {"fromuid":1054}
}

func ExampleReader() {
	var stream bytes.Buffer
	_ = wire.WriteFrame(&stream, wire.IDChatLogin, []byte(`{"uid":"1054","token":"5a3c"}`))
	_ = wire.WriteFrame(&stream, wire.IDHeartBeatReq, []byte(`{"fromuid":1054}`))

	fr := wire.NewReader(&stream, 1024)
	for {
		f, err := fr.ReadFrame()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		switch f.ID {
		case wire.IDChatLogin:
			var req wire.LoginReq
			if err := f.Decode(&req); err != nil {
				log.Fatal(err)
			}
			fmt.Println(f.ID, req.UID, req.HasCap(wire.CapCoalesce))
		default:
			fmt.Println(f.ID, len(f.Body))
		}
	}
	// Output:
	// MSG_CHAT_LOGIN 1054 false
	// ID_HEART_BEAT_REQ 16
}
