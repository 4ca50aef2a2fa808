// Package statuspb holds the protobuf messages and gRPC stubs generated from
// status.proto: the status module's service. Other code uses statusrpc,
// which adapts them to status.Service; only status.proto and this file are
// written by hand.
//
// Regenerating (go generate) needs protoc 3.21 or newer, protoc-gen-go and
// protoc-gen-go-grpc on PATH:
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
package statuspb

//go:generate protoc -I . --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative status.proto
