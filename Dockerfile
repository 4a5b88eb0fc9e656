# One image with both controllers and the CLI. The build stage runs hack/image/rootfs.sh, the same script as
# `make image-rootfs` (tested by running the controllers from its output), so the two cannot drift apart.
#   docker build -t ghcr.io/tagpilot/tagpilot:v0.1.0 .
# The Deployments (config/manager) pick the binary: command [image-reflector-controller] or
# [image-automation-controller].
FROM docker.io/library/rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN bash hack/image/rootfs.sh /rootfs --profile release

FROM scratch
COPY --from=build /rootfs /
ENV PATH=/usr/local/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65534:65534
VOLUME ["/data", "/tmp"]
ENTRYPOINT ["/usr/local/bin/image-reflector-controller"]
