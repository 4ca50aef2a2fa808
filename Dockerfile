# syntax=docker/dockerfile:1
#
# imsrv container image.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t imsrv .
#   docker run -p 8080:8080 -p 8090:8090 -v imsrv-data:/data imsrv
#
# The image runs `imsrv all` (every module, SQLite + in-memory KV) in /data, so
# the default database file is /data/data/imsrv.db: mount a volume on /data.
# Configure with IMSRV_* environment variables (docs/CONFIG.md) or mount a
# config file and pass `--config /path/config.yaml`.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0
# Dependencies first, so that source edits do not re-download modules.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/imsrv . \
 && mkdir -p /out/data

# distroless static: no shell, no libc (the binary is pure Go), CA certificates
# for rediss:// / PostgreSQL TLS / SMTP TLS, runs as uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/imsrv /imsrv
# /data must belong to the nonroot user so that SQLite can create data/imsrv.db.
COPY --from=build --chown=65532:65532 /out/data /data
WORKDIR /data
VOLUME ["/data"]
USER 65532:65532
# 8080: gate HTTP API (+ /healthz, /readyz, /metrics unless IMSRV_ADMIN_LISTEN
# is set); 8090: chat TCP for clients. Node-to-node gRPC (:50055) is only used
# when roles are spread over processes sharing Redis: publish it yourself then.
EXPOSE 8080 8090
ENTRYPOINT ["/imsrv"]
CMD ["all"]
