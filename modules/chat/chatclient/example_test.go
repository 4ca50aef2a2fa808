package chatclient_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/imsrv/imsrv/modules/chat/chatclient"
	"github.com/imsrv/imsrv/modules/chat/wire"
	"github.com/imsrv/imsrv/modules/errcode"
)

// This example logs in, sends a text to a friend and waits for a reply. The
// uid, token and chat address come from the gate's /user_login answer
// ("host" and "port"); the example needs a running server, so it is not run.
func ExampleClient() {
	const (
		addr   = "127.0.0.1:8090"
		uid    = 1054
		token  = "d4c0b5e3a8f14d6e9c2b7a1f0e3d5c89"
		friend = 1055
	)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	c, err := chatclient.Dial(ctx, addr, chatclient.WithHeartbeat(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	me, err := c.Login(ctx, uid, token)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("logged in as %s, %d friends\n", me.Name, len(me.FriendList))

	_, err = c.SendText(ctx, wire.TextChatMsgReq{
		ToUID:     friend,
		TextArray: []wire.TextItem{{MsgID: "m1", Content: "你好"}},
	})
	if serr, ok := errors.AsType[*chatclient.ServerError](err); ok {
		// The server refused: 1102 when friend is not a friend, for example.
		log.Fatalf("text refused: %d %s", serr.Code, errcode.Code(serr.Code).Message())
	}
	if err != nil {
		log.Fatal(err)
	}

	// Pushes arrive whether or not anyone waits; WaitPush keeps those with
	// other ids (friend applications, say) for later calls.
	f, err := c.WaitPush(ctx, wire.IDNotifyTextChatMsgReq)
	if err != nil {
		log.Fatal(err)
	}
	var reply wire.NotifyTextChatMsgReq
	if err := f.Decode(&reply); err != nil {
		log.Fatal(err)
	}
	for _, item := range reply.TextArray {
		fmt.Printf("%d: %s\n", reply.FromUID, item.Content)
	}
}
