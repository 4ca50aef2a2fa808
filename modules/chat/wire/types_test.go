package wire

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestInt32Unmarshal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Int32
	}{
		{`1054`, 1054},
		{`"1054"`, 1054},
		{`0`, 0},
		{`-7`, -7},
		{`"-7"`, -7},
		{`"0001054"`, 1054},
		{`"\u0031\u0030"`, 10},
		{`2147483647`, 2147483647},
		{`"-2147483648"`, -2147483648},
	} {
		var v Int32
		if err := json.Unmarshal([]byte(tc.in), &v); err != nil || v != tc.want {
			t.Errorf("Unmarshal(%s) = %d, %v; want %d", tc.in, v, err, tc.want)
		}
	}

	for _, in := range []string{
		`2147483648`, `"-2147483649"`, `99999999999999999999`,
		`1.5`, `1054.0`, `1e3`, `-`, `"1.5"`, `"1e3"`,
		`""`, `" 1"`, `"1 "`, `"+1"`, `"0x10"`, `"abc"`, `"１２"`,
		`true`, `false`, `{}`, `[]`, `[1]`, `{"uid":1}`,
	} {
		v := Int32(42)
		err := json.Unmarshal([]byte(in), &v)
		if err == nil {
			t.Errorf("Unmarshal(%s) = %d, want an error", in, v)
			continue
		}
		if v != 42 {
			t.Errorf("Unmarshal(%s) changed the value to %d despite failing", in, v)
		}
		// Malformed JSON is the decoder's syntax error; well-formed JSON of
		// the wrong kind is a type error.
		var syntaxErr *json.SyntaxError
		var typeErr *json.UnmarshalTypeError
		if !errors.As(err, &typeErr) && !errors.As(err, &syntaxErr) {
			t.Errorf("Unmarshal(%s) error %T %v, want a *json.UnmarshalTypeError", in, err, err)
		}
	}

	v := Int32(42)
	if err := json.Unmarshal([]byte(`null`), &v); err != nil || v != 42 {
		t.Errorf("Unmarshal(null) = %d, %v; want the value unchanged", v, err)
	}
}

func TestInt32ErrorNamesField(t *testing.T) {
	var req LoginReq
	err := json.Unmarshal([]byte(`{"uid":"sqy","token":"t"}`), &req)
	var typeErr *json.UnmarshalTypeError
	if !errors.As(err, &typeErr) {
		t.Fatalf("error = %v, want *json.UnmarshalTypeError", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "uid") || !strings.Contains(msg, `"sqy"`) {
		t.Errorf("error %q should name the field and the value", msg)
	}

	err = json.Unmarshal([]byte(`{"uid":"`+strings.Repeat("9", 1000)+`"}`), &req)
	if err == nil || len(err.Error()) > 200 {
		t.Errorf("error for a huge value should be short, got %d bytes", len(err.Error()))
	}
}

func TestInt32Marshal(t *testing.T) {
	b, err := json.Marshal(HeartBeatReq{FromUID: 1054})
	if err != nil || string(b) != `{"fromuid":1054}` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
}

func TestSearchKey(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    SearchKey
		uid     int32
		isUID   bool
		wantErr bool
	}{
		{in: `"1055"`, want: "1055", uid: 1055, isUID: true},
		{in: `1055`, want: "1055", uid: 1055, isUID: true},
		{in: `"001055"`, want: "001055", uid: 1055, isUID: true},
		{in: `"sqy"`, want: "sqy"},
		{in: `"小明"`, want: "小明"},
		{in: `"12ab"`, want: "12ab"},
		{in: `""`, want: ""},
		{in: `"-1"`, want: "-1"},
		{in: `"99999999999"`, want: "99999999999"},
		{in: `"１２"`, want: "１２"},
		{in: `-1`, wantErr: true},
		{in: `1.5`, wantErr: true},
		{in: `1e3`, wantErr: true},
		{in: `true`, wantErr: true},
		{in: `{}`, wantErr: true},
		{in: `["1055"]`, wantErr: true},
	} {
		var req SearchUserReq
		err := json.Unmarshal([]byte(`{"uid":`+tc.in+`}`), &req)
		if tc.wantErr {
			var typeErr *json.UnmarshalTypeError
			if !errors.As(err, &typeErr) {
				t.Errorf("Unmarshal(%s) = %q, %v; want a *json.UnmarshalTypeError", tc.in, req.UID, err)
			}
			continue
		}
		if err != nil || req.UID != tc.want {
			t.Errorf("Unmarshal(%s) = %q, %v; want %q", tc.in, req.UID, err, tc.want)
			continue
		}
		if uid, ok := req.UID.UID(); uid != tc.uid || ok != tc.isUID {
			t.Errorf("SearchKey(%q).UID() = %d, %v; want %d, %v", req.UID, uid, ok, tc.uid, tc.isUID)
		}
	}

	b, err := json.Marshal(SearchUserReq{UID: "1055"})
	if err != nil || string(b) != `{"uid":"1055"}` {
		t.Fatalf("Marshal = %s, %v; want the key as a string", b, err)
	}
}
