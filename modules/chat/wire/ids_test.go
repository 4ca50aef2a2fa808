package wire

import (
	"strconv"
	"testing"
)

func TestMsgIDString(t *testing.T) {
	for id, want := range map[MsgID]string{
		IDChatLogin:            "MSG_CHAT_LOGIN",
		IDHeartBeatRsp:         "ID_HEARTBEAT_RSP",
		IDNotifyTextChatMsgReq: "ID_NOTIFY_TEXT_CHAT_MSG_REQ",
		IDLoadChatMsgRsp:       "ID_LOAD_CHAT_MSG_RSP",
		1012:                   "MsgID(1012)",
		0:                      "MsgID(0)",
	} {
		if got := id.String(); got != want {
			t.Errorf("MsgID(%d).String() = %q, want %q", uint16(id), got, want)
		}
	}
}

func TestMsgIDClassification(t *testing.T) {
	requests := map[MsgID]MsgID{
		IDChatLogin:            IDChatLoginRsp,
		IDSearchUserReq:        IDSearchUserRsp,
		IDAddFriendReq:         IDAddFriendRsp,
		IDAuthFriendReq:        IDAuthFriendRsp,
		IDTextChatMsgReq:       IDTextChatMsgRsp,
		IDHeartBeatReq:         IDHeartBeatRsp,
		IDLoadChatThreadReq:    IDLoadChatThreadRsp,
		IDCreatePrivateChatReq: IDCreatePrivateChatRsp,
		IDLoadChatMsgReq:       IDLoadChatMsgRsp,
		IDMsgDeliveredReq:      IDMsgDeliveredRsp,
	}
	pushes := map[MsgID]bool{
		IDNotifyAddFriendReq: true, IDNotifyAuthFriendReq: true,
		IDNotifyTextChatMsgReq: true, IDNotifyOffLineReq: true,
	}
	known := 0
	for id := range MsgID(2000) {
		rsp, isRequest := id.Response()
		if want, ok := requests[id]; ok != isRequest || rsp != want {
			t.Errorf("%v.Response() = %v, %v; want %v, %v", id, rsp, isRequest, want, ok)
		}
		if id.IsPush() != pushes[id] {
			t.Errorf("%v.IsPush() = %v", id, id.IsPush())
		}
		if id.Known() {
			known++
			if id.String() == "MsgID("+strconv.Itoa(int(id))+")" {
				t.Errorf("known id %d has no name", uint16(id))
			}
		}
	}
	if known != 24 {
		t.Errorf("%d known ids, want 24", known)
	}
}
