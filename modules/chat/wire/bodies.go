package wire

import (
	"encoding/json"
	"slices"
)

// This file declares the JSON body of every message. Field names are the
// llfc names. Bodies a client sends (requests) use Int32 and SearchKey where
// clients disagree on types; bodies the server sends use plain types. Every
// server body has an "error" field: 0 means success, other values are the
// protocol's error codes.
//
// Ids and uids fit in an int32 because the llfc clients read them with
// QJsonValue::toInt; times ("chat_time") use ChatTimeLayout.

// CapCoalesce is the login capability by which a client declares that it
// parses several frames arriving in one read. Without it the server writes
// each frame on its own, after a gap, because the original Qt client loses
// track of the stream when two frames arrive together.
const CapCoalesce = "coalesce"

// CapConfirm is the login capability by which a client declares that it
// confirms received messages with IDMsgDeliveredReq. Without it the server
// counts a message as delivered once it has written the push and then read
// a heartbeat (1023) from the client.
const CapConfirm = "confirm"

// ChatTimeLayout is the time.Layout of "chat_time" values.
const ChatTimeLayout = "2006-01-02 15:04:05"

// Thread types in LoadChatThreadRsp.
const (
	ThreadTypePrivate = "private"
	ThreadTypeGroup   = "group"
)

// LoginReq is the body of IDChatLogin, the first frame on a connection.
type LoginReq struct {
	UID   Int32  `json:"uid"`
	Token string `json:"token"`
	// Caps lists the optional behaviours the client supports, such as
	// CapCoalesce. It is an imsrv extension; llfc clients omit it.
	Caps []string `json:"caps,omitempty"`
}

// HasCap reports whether the client declared the capability.
func (r *LoginReq) HasCap(c string) bool { return slices.Contains(r.Caps, c) }

// LoginRsp is the body of IDChatLoginRsp. Unlike the original it never
// carries the password.
type LoginRsp struct {
	Error int    `json:"error"`
	UID   int32  `json:"uid"`
	Name  string `json:"name"`
	Email string `json:"email"`
	Nick  string `json:"nick"`
	Desc  string `json:"desc"`
	Sex   int    `json:"sex"`
	Icon  string `json:"icon"`
	// Token echoes the login token, as the original does: the newer Qt
	// client keeps it from here for its file-transfer requests.
	Token      string      `json:"token,omitempty"`
	ApplyList  []ApplyInfo `json:"apply_list"`
	FriendList []Friend    `json:"friend_list"`
}

// MarshalJSON encodes nil lists as empty arrays.
func (r LoginRsp) MarshalJSON() ([]byte, error) {
	type plain LoginRsp
	p := plain(r)
	p.ApplyList = nonNil(p.ApplyList)
	p.FriendList = nonNil(p.FriendList)
	return json.Marshal(p)
}

// ApplyInfo is a friend application to the user, in LoginRsp.ApplyList.
type ApplyInfo struct {
	Name   string `json:"name"`
	UID    int32  `json:"uid"`
	Icon   string `json:"icon"`
	Nick   string `json:"nick"`
	Sex    int    `json:"sex"`
	Desc   string `json:"desc"`
	Status int    `json:"status"`
}

// Friend is a friend of the user, in LoginRsp.FriendList. Back is the user's
// remark for the friend.
type Friend struct {
	Name string `json:"name"`
	UID  int32  `json:"uid"`
	Icon string `json:"icon"`
	Nick string `json:"nick"`
	Sex  int    `json:"sex"`
	Desc string `json:"desc"`
	Back string `json:"back"`
}

// SearchUserReq is the body of IDSearchUserReq. Despite its name, UID holds
// either a uid or a user name; see SearchKey.UID.
type SearchUserReq struct {
	UID SearchKey `json:"uid"`
}

// SearchUserRsp is the body of IDSearchUserRsp: the public profile of the
// user found, without e-mail or password.
type SearchUserRsp struct {
	Error int    `json:"error"`
	UID   int32  `json:"uid"`
	Name  string `json:"name"`
	Nick  string `json:"nick"`
	Desc  string `json:"desc"`
	Sex   int    `json:"sex"`
	Icon  string `json:"icon"`
}

// AddFriendReq is the body of IDAddFriendReq: UID applies to ToUID.
// ApplyName is the applicant's name in older clients and the greeting text in
// the newer one; BakName is the applicant's remark for the new friend.
type AddFriendReq struct {
	UID       Int32  `json:"uid"`
	ApplyName string `json:"applyname"`
	BakName   string `json:"bakname"`
	ToUID     Int32  `json:"touid"`
}

// AddFriendRsp is the body of IDAddFriendRsp.
type AddFriendRsp struct {
	Error int `json:"error"`
}

// NotifyAddFriendReq is the body of IDNotifyAddFriendReq, pushed to the user
// applied to. Desc is the application's text.
type NotifyAddFriendReq struct {
	Error    int    `json:"error"`
	ApplyUID int32  `json:"applyuid"`
	Name     string `json:"name"`
	Desc     string `json:"desc"`
	Icon     string `json:"icon"`
	Sex      int    `json:"sex"`
	Nick     string `json:"nick"`
}

// AuthFriendReq is the body of IDAuthFriendReq: FromUID approves the
// application of ToUID and gives it the remark Back.
type AuthFriendReq struct {
	FromUID Int32  `json:"fromuid"`
	ToUID   Int32  `json:"touid"`
	Back    string `json:"back"`
}

// AuthFriendRsp is the body of IDAuthFriendRsp, sent to the approver: the new
// friend's profile and the first messages of their private thread.
type AuthFriendRsp struct {
	Error int    `json:"error"`
	UID   int32  `json:"uid"`
	Name  string `json:"name"`
	Nick  string `json:"nick"`
	Icon  string `json:"icon"`
	Sex   int    `json:"sex"`
	// ChatDatas must not be empty on success: the newer Qt client reads
	// element 0.
	ChatDatas []ThreadMessage `json:"chat_datas"`
	ThreadID  int32           `json:"thread_id"`
}

// MarshalJSON encodes a nil list as an empty array.
func (r AuthFriendRsp) MarshalJSON() ([]byte, error) {
	type plain AuthFriendRsp
	p := plain(r)
	p.ChatDatas = nonNil(p.ChatDatas)
	return json.Marshal(p)
}

// NotifyAuthFriendReq is the body of IDNotifyAuthFriendReq, pushed to the
// applicant when FromUID approves it: the approver's profile and the first
// messages of their private thread.
type NotifyAuthFriendReq struct {
	Error   int    `json:"error"`
	FromUID int32  `json:"fromuid"`
	ToUID   int32  `json:"touid"`
	Name    string `json:"name"`
	Nick    string `json:"nick"`
	Icon    string `json:"icon"`
	Sex     int    `json:"sex"`
	// ChatDatas must not be empty on success: the newer Qt client reads
	// element 0.
	ChatDatas []ThreadMessage `json:"chat_datas"`
	ThreadID  int32           `json:"thread_id"`
}

// MarshalJSON encodes a nil list as an empty array.
func (r NotifyAuthFriendReq) MarshalJSON() ([]byte, error) {
	type plain NotifyAuthFriendReq
	p := plain(r)
	p.ChatDatas = nonNil(p.ChatDatas)
	return json.Marshal(p)
}

// TextChatMsgReq is the body of IDTextChatMsgReq. Older clients send items
// {msgid, content}; the newer one sends ThreadID and items {content,
// unique_id}. A ThreadID of 0 means the field was absent.
type TextChatMsgReq struct {
	FromUID   Int32      `json:"fromuid"`
	ToUID     Int32      `json:"touid"`
	ThreadID  Int32      `json:"thread_id,omitempty"`
	TextArray []TextItem `json:"text_array"`
}

// TextItem is one text as the client sent it. MsgID (generation 1) and
// UniqueID (generation 2) are the client's own ids for the text; the server
// echoes them so that the client can match the acknowledgement.
type TextItem struct {
	MsgID    string `json:"msgid,omitempty"`
	Content  string `json:"content"`
	UniqueID string `json:"unique_id,omitempty"`
}

// TextChatMsgRsp is the body of IDTextChatMsgRsp, the sender's
// acknowledgement. It carries both generations' fields: TextArray echoes the
// request's items and ChatDatas reports each stored message.
type TextChatMsgRsp struct {
	Error     int            `json:"error"`
	FromUID   int32          `json:"fromuid"`
	ToUID     int32          `json:"touid"`
	ThreadID  int32          `json:"thread_id"`
	TextArray []TextItem     `json:"text_array"`
	ChatDatas []TextChatData `json:"chat_datas"`
}

// MarshalJSON encodes nil lists as empty arrays.
func (r TextChatMsgRsp) MarshalJSON() ([]byte, error) {
	type plain TextChatMsgRsp
	p := plain(r)
	p.TextArray = nonNil(p.TextArray)
	p.ChatDatas = nonNil(p.ChatDatas)
	return json.Marshal(p)
}

// NotifyTextChatMsgReq is the body of IDNotifyTextChatMsgReq, pushed to the
// receiver. It has the fields of TextChatMsgRsp; one push may carry several
// texts of one sender.
type NotifyTextChatMsgReq TextChatMsgRsp

// MarshalJSON encodes nil lists as empty arrays.
func (r NotifyTextChatMsgReq) MarshalJSON() ([]byte, error) {
	return TextChatMsgRsp(r).MarshalJSON()
}

// TextChatData is a stored text in TextChatMsgRsp and NotifyTextChatMsgReq.
// MessageID is the server's id, UniqueID the client's.
type TextChatData struct {
	MessageID int32  `json:"message_id"`
	UniqueID  string `json:"unique_id"`
	Content   string `json:"content"`
	Status    int    `json:"status"`
	ChatTime  string `json:"chat_time"`
	// Seq is the message's sequence number in its thread (strictly
	// increasing, gap-free); an imsrv extension, used to confirm delivery.
	Seq int64 `json:"seq"`
}

// ThreadMessage is a stored message of a thread, as listed by AuthFriendRsp,
// NotifyAuthFriendReq and LoadChatMsgRsp. Note the field names differ from
// TextChatData's.
type ThreadMessage struct {
	Sender     int32  `json:"sender"`
	MsgID      int32  `json:"msg_id"`
	ThreadID   int32  `json:"thread_id"`
	UniqueID   string `json:"unique_id"`
	MsgContent string `json:"msg_content"`
	ChatTime   string `json:"chat_time"`
	Status     int    `json:"status"`
}

// HeartBeatReq is the body of IDHeartBeatReq.
type HeartBeatReq struct {
	FromUID Int32 `json:"fromuid"`
}

// HeartBeatRsp is the body of IDHeartBeatRsp.
type HeartBeatRsp struct {
	Error int `json:"error"`
}

// NotifyOffLineReq is the body of IDNotifyOffLineReq, pushed to a connection
// replaced by a newer login of UID; the server closes the connection after it.
type NotifyOffLineReq struct {
	Error int   `json:"error"`
	UID   int32 `json:"uid"`
}

// LoadChatThreadReq is the body of IDLoadChatThreadReq: a page of UID's
// threads with ids greater than the cursor ThreadID (0 for the first page).
type LoadChatThreadReq struct {
	UID      Int32 `json:"uid"`
	ThreadID Int32 `json:"thread_id"`
}

// LoadChatThreadRsp is the body of IDLoadChatThreadRsp: threads in ascending
// id order. When LoadMore is set, NextLastID is the cursor for the next page.
type LoadChatThreadRsp struct {
	Error      int          `json:"error"`
	UID        int32        `json:"uid"`
	LoadMore   bool         `json:"load_more"`
	NextLastID int32        `json:"next_last_id"`
	Threads    []ChatThread `json:"threads"`
}

// MarshalJSON encodes a nil list as an empty array.
func (r LoadChatThreadRsp) MarshalJSON() ([]byte, error) {
	type plain LoadChatThreadRsp
	p := plain(r)
	p.Threads = nonNil(p.Threads)
	return json.Marshal(p)
}

// ChatThread is a conversation: a private thread between User1ID and User2ID
// (ThreadTypePrivate) or a group (ThreadTypeGroup).
type ChatThread struct {
	ThreadID int32  `json:"thread_id"`
	Type     string `json:"type"`
	User1ID  int32  `json:"user1_id"`
	User2ID  int32  `json:"user2_id"`
}

// CreatePrivateChatReq is the body of IDCreatePrivateChatReq: find or create
// the private thread of UID and OtherID.
type CreatePrivateChatReq struct {
	UID     Int32 `json:"uid"`
	OtherID Int32 `json:"other_id"`
}

// CreatePrivateChatRsp is the body of IDCreatePrivateChatRsp.
type CreatePrivateChatRsp struct {
	Error    int   `json:"error"`
	UID      int32 `json:"uid"`
	OtherID  int32 `json:"other_id"`
	ThreadID int32 `json:"thread_id"`
}

// LoadChatMsgReq is the body of IDLoadChatMsgReq: a page of the thread's
// messages with ids greater than the cursor MessageID (0 for the first page).
type LoadChatMsgReq struct {
	ThreadID  Int32 `json:"thread_id"`
	MessageID Int32 `json:"message_id"`
}

// LoadChatMsgRsp is the body of IDLoadChatMsgRsp: messages in ascending id
// order. When LoadMore is set, LastMessageID is the cursor for the next page.
type LoadChatMsgRsp struct {
	Error         int             `json:"error"`
	ThreadID      int32           `json:"thread_id"`
	LastMessageID int32           `json:"last_message_id"`
	LoadMore      bool            `json:"load_more"`
	ChatDatas     []ThreadMessage `json:"chat_datas"`
}

// MarshalJSON encodes a nil list as an empty array.
func (r LoadChatMsgRsp) MarshalJSON() ([]byte, error) {
	type plain LoadChatMsgRsp
	p := plain(r)
	p.ChatDatas = nonNil(p.ChatDatas)
	return json.Marshal(p)
}

// nonNil returns s, or an empty slice when s is nil, so that a list encodes
// as [] rather than null: every client accepts an array, while a null list is
// something the original server never sent.
func nonNil[S ~[]E, E any](s S) S {
	if s == nil {
		return S{}
	}
	return s
}

// MsgDeliveredReq is the body of IDMsgDeliveredReq (imsrv extension): the
// client has received every message of ThreadID up to Seq.
type MsgDeliveredReq struct {
	ThreadID Int32 `json:"thread_id"`
	Seq      int64 `json:"seq"`
}

// MsgDeliveredRsp is the body of IDMsgDeliveredRsp.
type MsgDeliveredRsp struct {
	Error    int   `json:"error"`
	ThreadID int32 `json:"thread_id"`
	Seq      int64 `json:"seq"`
}
