# zpaged container: built on Debian 12 from Debian's packages, run as a
# non-root user with only the runtime libraries.
#
#   docker build -t zpaged .
#   docker run -p 50051:50051 -p 9464:9464 zpaged
#
# The runtime packages below are checked against the binaries' shared
# libraries by tests/deploy/check_deploy.sh.

FROM debian:bookworm AS build
COPY scripts/install-deps.sh /tmp/install-deps.sh
RUN /tmp/install-deps.sh --runtime-build && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY proto proto
COPY contract contract
COPY server server
COPY client client
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DZPAGED_BUILD_TESTS=OFF \
 && cmake --build /build --target zpaged zpagectl

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libgrpc++1.51 libprotobuf32 liblz4-1 libzstd1 libabsl20220623 \
      libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin zpaged
COPY --from=build /build/server/zpaged /build/client/zpagectl /usr/local/bin/
USER zpaged
# Listen on every interface inside the container; publish the ports to
# choose who can reach them. Off loopback zpaged insists on a token file
# (ZPAGED_AUTH_TOKENS_FILE) unless ZPAGED_ALLOW_UNAUTHENTICATED_REMOTE=true
# is set; the image sets neither, so that choice is the operator's. The
# health service needs no token, so the HEALTHCHECK works either way.
ENV ZPAGED_LISTEN=0.0.0.0:50051 \
    ZPAGED_METRICS_LISTEN=0.0.0.0:9464
EXPOSE 50051 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["zpagectl", "--server=127.0.0.1:50051", "--timeout=2s", "health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["zpaged"]
