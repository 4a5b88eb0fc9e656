# One image per controller, as Flux's: the entrypoint of `image-reflector-controller` is that controller, so a
# Flux kustomization's `images:` entry (newName) is the whole switch; and one with the CLI. The build stage runs
# hack/image/rootfs.sh, the same script as `make image-rootfs` (tested by running the controllers from its
# output with Flux's Deployment args), so the two cannot drift apart.
#   docker build --target image-reflector-controller -t ghcr.io/tagpilot/image-reflector-controller:v0.1.0 .
#   docker build --target image-automation-controller -t ghcr.io/tagpilot/image-automation-controller:v0.1.0 .
#   docker build --target tagpilot -t ghcr.io/tagpilot/tagpilot:v0.1.0 .
FROM docker.io/library/rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --locked --release -p tagpilot -p image-reflector-controller -p image-automation-controller --bins \
 && for b in image-reflector-controller image-automation-controller tagpilot; do \
      bash hack/image/rootfs.sh /rootfs-$b --profile release --no-build --only $b; done

FROM scratch AS image-reflector-controller
COPY --from=build /rootfs-image-reflector-controller /
ENV PATH=/usr/local/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65534:65534
VOLUME ["/data", "/tmp"]
ENTRYPOINT ["/usr/local/bin/image-reflector-controller"]

FROM scratch AS image-automation-controller
COPY --from=build /rootfs-image-automation-controller /
ENV PATH=/usr/local/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65534:65534
VOLUME ["/tmp"]
ENTRYPOINT ["/usr/local/bin/image-automation-controller"]

FROM scratch AS tagpilot
COPY --from=build /rootfs-tagpilot /
ENV PATH=/usr/local/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/tagpilot"]
