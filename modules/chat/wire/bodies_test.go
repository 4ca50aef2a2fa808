package wire

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sample is a body of every type, with Chinese text, keyed by its message id.
type sample struct {
	id   MsgID
	body any // a struct value, not a pointer
}

func samples() []sample {
	msgs := []ThreadMessage{
		{Sender: 1055, MsgID: 1, ThreadID: 7, UniqueID: "u-1", MsgContent: "你好，我是小明", ChatTime: "2025-01-02 03:04:05", Status: 2},
		{Sender: 1054, MsgID: 2, ThreadID: 7, UniqueID: "u-2", MsgContent: "We are friends now!", ChatTime: "2025-01-02 03:04:06", Status: 2},
	}
	texts := []TextItem{{MsgID: "local-uuid-1", Content: "你好"}, {UniqueID: "{6a1c}", Content: "在吗？😀"}}
	datas := []TextChatData{{MessageID: 11, UniqueID: "{6a1c}", Content: "在吗？😀", Status: 2, ChatTime: "2025-01-02 03:04:05"}}
	return []sample{
		{IDChatLogin, LoginReq{UID: 1054, Token: "5a3c", Caps: []string{CapCoalesce}}},
		{IDChatLoginRsp, LoginRsp{
			UID: 1054, Name: "sqy", Email: "3175614975@qq.com", Nick: "小石", Desc: "签名", Icon: ":/res/head_2.jpg", Token: "5a3c",
			ApplyList:  []ApplyInfo{{Name: "userA", UID: 1032, Icon: ":/res/head_1.jpg", Nick: "甲", Desc: "你好"}},
			FriendList: []Friend{{Name: "ocz", UID: 1055, Icon: ":/res/head_3.jpg", Nick: "欧", Sex: 1, Back: "兄弟"}},
		}},
		{IDSearchUserReq, SearchUserReq{UID: "小明"}},
		{IDSearchUserRsp, SearchUserRsp{UID: 1055, Name: "小明", Nick: "明", Desc: "描述", Sex: 1, Icon: ":/res/head_3.jpg"}},
		{IDAddFriendReq, AddFriendReq{UID: 1054, ApplyName: "我是小石", BakName: "明哥", ToUID: 1055}},
		{IDAddFriendRsp, AddFriendRsp{Error: 1011}},
		{IDNotifyAddFriendReq, NotifyAddFriendReq{ApplyUID: 1054, Name: "sqy", Desc: "我是小石", Icon: ":/res/head_2.jpg", Nick: "小石"}},
		{IDAuthFriendReq, AuthFriendReq{FromUID: 1055, ToUID: 1054, Back: "兄弟"}},
		{IDAuthFriendRsp, AuthFriendRsp{UID: 1054, Name: "sqy", Nick: "小石", Icon: ":/res/head_2.jpg", ChatDatas: msgs, ThreadID: 7}},
		{IDNotifyAuthFriendReq, NotifyAuthFriendReq{FromUID: 1055, ToUID: 1054, Name: "ocz", Nick: "欧", Icon: ":/res/head_3.jpg", Sex: 1, ChatDatas: msgs, ThreadID: 7}},
		{IDTextChatMsgReq, TextChatMsgReq{FromUID: 1054, ToUID: 1055, ThreadID: 7, TextArray: texts}},
		{IDTextChatMsgRsp, TextChatMsgRsp{FromUID: 1054, ToUID: 1055, ThreadID: 7, TextArray: texts, ChatDatas: datas}},
		{IDNotifyTextChatMsgReq, NotifyTextChatMsgReq{FromUID: 1054, ToUID: 1055, ThreadID: 7, TextArray: texts, ChatDatas: datas}},
		{IDNotifyOffLineReq, NotifyOffLineReq{UID: 1054}},
		{IDHeartBeatReq, HeartBeatReq{FromUID: 1054}},
		{IDHeartBeatRsp, HeartBeatRsp{}},
		{IDLoadChatThreadReq, LoadChatThreadReq{UID: 1054, ThreadID: 3}},
		{IDLoadChatThreadRsp, LoadChatThreadRsp{UID: 1054, LoadMore: true, NextLastID: 12, Threads: []ChatThread{{ThreadID: 7, Type: ThreadTypePrivate, User1ID: 1054, User2ID: 1055}}}},
		{IDCreatePrivateChatReq, CreatePrivateChatReq{UID: 1054, OtherID: 1055}},
		{IDCreatePrivateChatRsp, CreatePrivateChatRsp{UID: 1054, OtherID: 1055, ThreadID: 7}},
		{IDLoadChatMsgReq, LoadChatMsgReq{ThreadID: 7, MessageID: 0}},
		{IDLoadChatMsgRsp, LoadChatMsgRsp{ThreadID: 7, LastMessageID: 2, ChatDatas: msgs}},
		{IDMsgDeliveredReq, MsgDeliveredReq{ThreadID: 7, Seq: 42}},
		{IDMsgDeliveredRsp, MsgDeliveredRsp{ThreadID: 7, Seq: 42}},
	}
}

// newBody returns a pointer to a zero value of body's type.
func newBody(body any) any { return reflect.New(reflect.TypeOf(body)).Interface() }

func TestBodiesRoundTrip(t *testing.T) {
	seen := map[MsgID]bool{}
	for _, s := range samples() {
		seen[s.id] = true
		frame, err := EncodeFrame(s.id, s.body)
		if err != nil {
			t.Fatalf("%v: EncodeFrame: %v", s.id, err)
		}
		if !strings.Contains(string(frame), "\"") || strings.Contains(string(frame), `\u`) {
			t.Errorf("%v: body should be UTF-8 JSON without \\u escapes: %s", s.id, frame[HeaderLen:])
		}
		fr := NewReader(strings.NewReader(string(frame)), 0)
		f, err := fr.ReadFrame()
		if err != nil || f.ID != s.id {
			t.Fatalf("%v: ReadFrame = %v, %v", s.id, f.ID, err)
		}
		got := newBody(s.body)
		if err := f.Decode(got); err != nil {
			t.Fatalf("%v: Decode: %v", s.id, err)
		}
		if got := reflect.ValueOf(got).Elem().Interface(); !reflect.DeepEqual(got, s.body) {
			t.Errorf("%v: round trip\n got %+v\nwant %+v", s.id, got, s.body)
		}
	}
	for id := range MsgID(2000) {
		if id.Known() && !seen[id] {
			t.Errorf("no sample body for %v", id)
		}
	}
}

// TestSeedExamples decodes the request bodies exactly as the llfc protocol
// document shows them.
func TestSeedExamples(t *testing.T) {
	var login LoginReq
	mustDecode(t, `{"uid":1054,"token":"5a3c..."}`, &login)
	if login.UID != 1054 || login.Token != "5a3c..." || login.HasCap(CapCoalesce) {
		t.Errorf("login = %+v", login)
	}

	var search SearchUserReq
	mustDecode(t, `{"uid":"1055"}`, &search)
	if uid, ok := search.UID.UID(); !ok || uid != 1055 {
		t.Errorf("search = %+v", search)
	}

	var add AddFriendReq
	mustDecode(t, `{"uid":1054,"applyname":"sqy","bakname":"sqy","touid":1055}`, &add)
	if add != (AddFriendReq{UID: 1054, ApplyName: "sqy", BakName: "sqy", ToUID: 1055}) {
		t.Errorf("add friend = %+v", add)
	}

	var auth AuthFriendReq
	mustDecode(t, `{"fromuid":1055,"touid":1054,"back":"兄弟"}`, &auth)
	if auth != (AuthFriendReq{FromUID: 1055, ToUID: 1054, Back: "兄弟"}) {
		t.Errorf("auth friend = %+v", auth)
	}

	var text TextChatMsgReq
	mustDecode(t, `{"fromuid":1054,"touid":1055,"text_array":[
		{"msgid":"local-uuid-1","content":"你好"},
		{"msgid":"local-uuid-2","content":"在吗？"}]}`, &text)
	want := TextChatMsgReq{FromUID: 1054, ToUID: 1055, TextArray: []TextItem{
		{MsgID: "local-uuid-1", Content: "你好"}, {MsgID: "local-uuid-2", Content: "在吗？"},
	}}
	if !reflect.DeepEqual(text, want) {
		t.Errorf("text = %+v", text)
	}

	// The newer Qt client: thread_id and unique_id, ids as numbers.
	var text2 TextChatMsgReq
	mustDecode(t, `{"fromuid":1054,"touid":1055,"thread_id":7,"text_array":[{"content":"你好","unique_id":"{0f8e}"}]}`, &text2)
	if text2.ThreadID != 7 || text2.TextArray[0].UniqueID != "{0f8e}" || text2.TextArray[0].MsgID != "" {
		t.Errorf("generation 2 text = %+v", text2)
	}

	var hb HeartBeatReq
	mustDecode(t, `{"fromuid":1054}`, &hb)
	if hb.FromUID != 1054 {
		t.Errorf("heartbeat = %+v", hb)
	}

	// Extra fields are ignored.
	var threads LoadChatThreadReq
	mustDecode(t, `{"uid":"1054","thread_id":0,"extra":[1,2]}`, &threads)
	if threads.UID != 1054 {
		t.Errorf("threads = %+v", threads)
	}
}

func mustDecode(t *testing.T, body string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
}

func TestResponseEncoding(t *testing.T) {
	// No password anywhere, an error field in every server body, no e-mail
	// in search results.
	for _, s := range samples() {
		b, err := json.Marshal(s.body)
		if err != nil {
			t.Fatal(err)
		}
		var fields map[string]any
		if err := json.Unmarshal(b, &fields); err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{"pwd", "passwd", "password"} {
			if _, ok := fields[secret]; ok {
				t.Errorf("%v body has %q: %s", s.id, secret, b)
			}
		}
		_, hasError := fields["error"]
		if _, isRequest := s.id.Response(); !isRequest && !hasError {
			t.Errorf("%v is sent by the server but has no error field: %s", s.id, b)
		}
	}
	b, _ := json.Marshal(SearchUserRsp{UID: 1})
	if want := `{"error":0,"uid":1,"name":"","nick":"","desc":"","sex":0,"icon":""}`; string(b) != want {
		t.Errorf("search rsp = %s, want %s", b, want)
	}

	// Lists encode as [] rather than null, through values and pointers.
	for _, tc := range []struct {
		v    any
		want string
	}{
		{LoginRsp{}, `{"error":0,"uid":0,"name":"","email":"","nick":"","desc":"","sex":0,"icon":"","apply_list":[],"friend_list":[]}`},
		{&LoginRsp{Error: 1010}, `{"error":1010,"uid":0,"name":"","email":"","nick":"","desc":"","sex":0,"icon":"","apply_list":[],"friend_list":[]}`},
		{TextChatMsgRsp{}, `{"error":0,"fromuid":0,"touid":0,"thread_id":0,"text_array":[],"chat_datas":[]}`},
		{&NotifyTextChatMsgReq{}, `{"error":0,"fromuid":0,"touid":0,"thread_id":0,"text_array":[],"chat_datas":[]}`},
		{AuthFriendRsp{}, `{"error":0,"uid":0,"name":"","nick":"","icon":"","sex":0,"chat_datas":[],"thread_id":0}`},
		{NotifyAuthFriendReq{}, `{"error":0,"fromuid":0,"touid":0,"name":"","nick":"","icon":"","sex":0,"chat_datas":[],"thread_id":0}`},
		{LoadChatThreadRsp{}, `{"error":0,"uid":0,"load_more":false,"next_last_id":0,"threads":[]}`},
		{LoadChatMsgRsp{}, `{"error":0,"thread_id":0,"last_message_id":0,"load_more":false,"chat_datas":[]}`},
		{struct {
			R []LoginRsp `json:"r"`
		}{[]LoginRsp{{}}}, `{"r":[{"error":0,"uid":0,"name":"","email":"","nick":"","desc":"","sex":0,"icon":"","apply_list":[],"friend_list":[]}]}`},
	} {
		b, err := json.Marshal(tc.v)
		if err != nil || string(b) != tc.want {
			t.Errorf("Marshal(%T) =\n %s, %v\nwant\n %s", tc.v, b, err, tc.want)
		}
	}

	// Generation-1 text items keep msgid and leave out unique_id.
	b, _ = json.Marshal(TextItem{MsgID: "m1", Content: "你好"})
	if want := `{"msgid":"m1","content":"你好"}`; string(b) != want {
		t.Errorf("text item = %s, want %s", b, want)
	}
	// A request without thread_id does not send one.
	b, _ = json.Marshal(TextChatMsgReq{FromUID: 1, ToUID: 2})
	if strings.Contains(string(b), "thread_id") {
		t.Errorf("text request without a thread = %s", b)
	}
}

func TestChatTimeLayout(t *testing.T) {
	ts := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	if got := ts.Format(ChatTimeLayout); got != "2025-01-02 03:04:05" {
		t.Errorf("chat time = %q", got)
	}
}
