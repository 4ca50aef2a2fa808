package wire

import "strconv"

// MsgID is the message id in a frame header. The constants below are every id
// the llfc protocol defines; the comment after each names its body type.
// Ids are named after the llfc macros (MSG_CHAT_LOGIN, ID_SEARCH_USER_REQ,
// ...), so "Req" marks what the original calls a request even when the server
// sends it (the Notify pushes).
type MsgID uint16

// Generation 1: login, friends, text chat, heartbeat.
const (
	IDChatLogin            MsgID = 1005 // client → server, LoginReq
	IDChatLoginRsp         MsgID = 1006 // server → client, LoginRsp
	IDSearchUserReq        MsgID = 1007 // client → server, SearchUserReq
	IDSearchUserRsp        MsgID = 1008 // server → client, SearchUserRsp
	IDAddFriendReq         MsgID = 1009 // client → server, AddFriendReq
	IDAddFriendRsp         MsgID = 1010 // server → client, AddFriendRsp
	IDNotifyAddFriendReq   MsgID = 1011 // server → client push, NotifyAddFriendReq
	IDAuthFriendReq        MsgID = 1013 // client → server, AuthFriendReq
	IDAuthFriendRsp        MsgID = 1014 // server → client, AuthFriendRsp
	IDNotifyAuthFriendReq  MsgID = 1015 // server → client push, NotifyAuthFriendReq
	IDTextChatMsgReq       MsgID = 1017 // client → server, TextChatMsgReq
	IDTextChatMsgRsp       MsgID = 1018 // server → client, TextChatMsgRsp
	IDNotifyTextChatMsgReq MsgID = 1019 // server → client push, NotifyTextChatMsgReq
	IDNotifyOffLineReq     MsgID = 1021 // server → client push, NotifyOffLineReq
	IDHeartBeatReq         MsgID = 1023 // client → server, HeartBeatReq
	IDHeartBeatRsp         MsgID = 1024 // server → client, HeartBeatRsp
)

// Generation 2: stored chat threads and history.
const (
	IDLoadChatThreadReq    MsgID = 1025 // client → server, LoadChatThreadReq
	IDLoadChatThreadRsp    MsgID = 1026 // server → client, LoadChatThreadRsp
	IDCreatePrivateChatReq MsgID = 1027 // client → server, CreatePrivateChatReq
	IDCreatePrivateChatRsp MsgID = 1028 // server → client, CreatePrivateChatRsp
	IDLoadChatMsgReq       MsgID = 1029 // client → server, LoadChatMsgReq
	IDLoadChatMsgRsp       MsgID = 1030 // server → client, LoadChatMsgRsp
)

// imsrv extensions (ids from 1100 up; llfc clients never send them).
const (
	// IDMsgDeliveredReq confirms that the client has received every message
	// of a thread up to a sequence number (MsgDeliveredReq). Messages it has
	// not confirmed are delivered again at its next login.
	IDMsgDeliveredReq MsgID = 1100 // client → server, MsgDeliveredReq
	IDMsgDeliveredRsp MsgID = 1101 // server → client, MsgDeliveredRsp
)

// String returns the llfc macro name of a known id, e.g. "ID_SEARCH_USER_REQ",
// and "MsgID(n)" for any other value.
func (id MsgID) String() string {
	switch id {
	case IDChatLogin:
		return "MSG_CHAT_LOGIN"
	case IDChatLoginRsp:
		return "MSG_CHAT_LOGIN_RSP"
	case IDSearchUserReq:
		return "ID_SEARCH_USER_REQ"
	case IDSearchUserRsp:
		return "ID_SEARCH_USER_RSP"
	case IDAddFriendReq:
		return "ID_ADD_FRIEND_REQ"
	case IDAddFriendRsp:
		return "ID_ADD_FRIEND_RSP"
	case IDNotifyAddFriendReq:
		return "ID_NOTIFY_ADD_FRIEND_REQ"
	case IDAuthFriendReq:
		return "ID_AUTH_FRIEND_REQ"
	case IDAuthFriendRsp:
		return "ID_AUTH_FRIEND_RSP"
	case IDNotifyAuthFriendReq:
		return "ID_NOTIFY_AUTH_FRIEND_REQ"
	case IDTextChatMsgReq:
		return "ID_TEXT_CHAT_MSG_REQ"
	case IDTextChatMsgRsp:
		return "ID_TEXT_CHAT_MSG_RSP"
	case IDNotifyTextChatMsgReq:
		return "ID_NOTIFY_TEXT_CHAT_MSG_REQ"
	case IDNotifyOffLineReq:
		return "ID_NOTIFY_OFF_LINE_REQ"
	case IDHeartBeatReq:
		return "ID_HEART_BEAT_REQ"
	case IDHeartBeatRsp:
		return "ID_HEARTBEAT_RSP"
	case IDLoadChatThreadReq:
		return "ID_LOAD_CHAT_THREAD_REQ"
	case IDLoadChatThreadRsp:
		return "ID_LOAD_CHAT_THREAD_RSP"
	case IDCreatePrivateChatReq:
		return "ID_CREATE_PRIVATE_CHAT_REQ"
	case IDCreatePrivateChatRsp:
		return "ID_CREATE_PRIVATE_CHAT_RSP"
	case IDLoadChatMsgReq:
		return "ID_LOAD_CHAT_MSG_REQ"
	case IDLoadChatMsgRsp:
		return "ID_LOAD_CHAT_MSG_RSP"
	case IDMsgDeliveredReq:
		return "ID_MSG_DELIVERED_REQ"
	case IDMsgDeliveredRsp:
		return "ID_MSG_DELIVERED_RSP"
	}
	return "MsgID(" + strconv.Itoa(int(id)) + ")"
}

// Known reports whether id is one of the ids the protocol defines.
func (id MsgID) Known() bool {
	_, isRequest := id.Response()
	return isRequest || id.IsPush() || id.isResponse()
}

// Response returns the id of the server's answer to the request id, and false
// when id is not a request a client sends (a response, a push or unknown).
func (id MsgID) Response() (MsgID, bool) {
	switch id {
	case IDChatLogin, IDSearchUserReq, IDAddFriendReq, IDAuthFriendReq,
		IDTextChatMsgReq, IDHeartBeatReq, IDLoadChatThreadReq,
		IDCreatePrivateChatReq, IDLoadChatMsgReq, IDMsgDeliveredReq:
		// Every request is answered with the next id.
		return id + 1, true
	}
	return 0, false
}

// IsPush reports whether id is a message the server sends unprompted: a
// friend application (1011), an approval (1015), a text (1019) or a kick (1021).
func (id MsgID) IsPush() bool {
	switch id {
	case IDNotifyAddFriendReq, IDNotifyAuthFriendReq, IDNotifyTextChatMsgReq,
		IDNotifyOffLineReq:
		return true
	}
	return false
}

func (id MsgID) isResponse() bool {
	switch id {
	case IDChatLoginRsp, IDSearchUserRsp, IDAddFriendRsp, IDAuthFriendRsp,
		IDTextChatMsgRsp, IDHeartBeatRsp, IDLoadChatThreadRsp,
		IDCreatePrivateChatRsp, IDLoadChatMsgRsp, IDMsgDeliveredRsp:
		return true
	}
	return false
}
