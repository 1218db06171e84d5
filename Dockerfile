# syntax=docker/dockerfile:1
#
# PrefOnline worker image. Build (from the repository root):
#   docker build -t prefonline:dev .
# Run the embedded demo (no Kafka):
#   docker run --rm -p 8080:8080 --read-only --tmpfs /tmp -v prefonline-ckpt:/var/lib/prefonline prefonline:dev
# Any verb works: docker run --rm prefonline:dev checkpoint list
#
# Stage 1 builds the native libtorch shim and the .NET app with `dotnet publish`: the same MSBuild
# target (BuildNativeShim, CMake over Debian's libtorch) that `./dev.sh build` runs. The apt packages
# are dev.sh's build packages (APT_PACKAGES minus the test-only tools kcat, python3-torch, python3-regex, prometheus,
# yamllint, unzip); tests/PrefOnline.Deployment.Tests checks the two lists agree.
# Stage 2 is Debian 12 with the ASP.NET Core runtime and only the runtime libraries: libtorch 1.13,
# OpenBLAS (openmp flavour: the reference BLAS makes training ~25x slower) and librdkafka.
# Debian 12 in both stages because the shim is built against, and must run with, Debian 12's libtorch 1.13.
# No HEALTHCHECK: Kubernetes probes /healthz and /readyz (helm/prefonline).

ARG DOTNET_VERSION=10.0

# The .NET SDK and ASP.NET runtime are copied from Microsoft's images (portable builds that run on
# Debian 12's glibc), so the base stays Debian 12 and the .NET version stays pinned in one ARG.
FROM mcr.microsoft.com/dotnet/sdk:${DOTNET_VERSION} AS dotnet-sdk
FROM mcr.microsoft.com/dotnet/aspnet:${DOTNET_VERSION} AS dotnet-aspnet

# ---------------------------------------------------------------------------------------------------
FROM debian:12-slim AS build
ENV DEBIAN_FRONTEND=noninteractive \
    DOTNET_ROOT=/usr/share/dotnet \
    DOTNET_CLI_TELEMETRY_OPTOUT=1 \
    DOTNET_NOLOGO=1 \
    DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libtorch-dev libopenblas0-openmp cmake g++ librdkafka1 librdkafka-dev \
        ca-certificates libssl3 zlib1g \
    && rm -rf /var/lib/apt/lists/*
COPY --from=dotnet-sdk /usr/share/dotnet /usr/share/dotnet
RUN ln -s /usr/share/dotnet/dotnet /usr/bin/dotnet

WORKDIR /src
# Restore in its own layer so source edits do not re-download packages.
COPY Directory.Build.props Directory.Packages.props ./
COPY src/PrefOnline.Torch/PrefOnline.Torch.csproj src/PrefOnline.Torch/
COPY src/PrefOnline.Learning/PrefOnline.Learning.csproj src/PrefOnline.Learning/
COPY src/PrefOnline.Streaming/PrefOnline.Streaming.csproj src/PrefOnline.Streaming/
COPY src/PrefOnline.Worker/PrefOnline.Worker.csproj src/PrefOnline.Worker/
RUN dotnet restore src/PrefOnline.Worker/PrefOnline.Worker.csproj
COPY src/ src/
RUN dotnet publish src/PrefOnline.Worker/PrefOnline.Worker.csproj -c Release --no-restore -o /app \
    && test -f /app/libprefonline_torch.so \
    && test -x /app/prefonline

# ---------------------------------------------------------------------------------------------------
FROM debian:12-slim AS runtime
ENV DEBIAN_FRONTEND=noninteractive
# libgomp1: the shim links OpenMP itself (its fused optimiser kernel uses at::parallel_for).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libtorch1.13 libopenblas0-openmp libgomp1 librdkafka1 \
        ca-certificates libssl3 zlib1g tzdata \
    && update-alternatives --set libblas.so.3-x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3 \
    && update-alternatives --set liblapack.so.3-x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/openblas-openmp/liblapack.so.3 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=dotnet-aspnet /usr/share/dotnet /usr/share/dotnet
RUN ln -s /usr/share/dotnet/dotnet /usr/bin/dotnet

# A fixed non-root uid/gid (10001) that the Helm chart's securityContext names.
RUN groupadd --system --gid 10001 prefonline \
    && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin prefonline \
    && mkdir -p /var/lib/prefonline/checkpoints /etc/prefonline/config \
    && chown -R 10001:10001 /var/lib/prefonline

COPY --from=build /app /app
COPY config/ /etc/prefonline/config/
RUN ln -s /app/prefonline /usr/local/bin/prefonline

# Read-only-root friendly: the process writes only to /var/lib/prefonline (checkpoints; a volume)
# and /tmp (.NET's diagnostics socket, temporary files; an emptyDir/tmpfs). HOME points at /tmp so
# nothing tries to create a profile directory on the read-only root.
ENV DOTNET_ROOT=/usr/share/dotnet \
    HOME=/tmp \
    TMPDIR=/tmp \
    PREFONLINE__Checkpoints__Directory=/var/lib/prefonline/checkpoints \
    PREFONLINE__Observability__BindAddress=0.0.0.0 \
    PREFONLINE__Observability__Port=8080
VOLUME ["/var/lib/prefonline"]
EXPOSE 8080
USER 10001:10001
WORKDIR /var/lib/prefonline
ENTRYPOINT ["/app/prefonline"]
CMD ["run", "--config", "/etc/prefonline/config/appsettings.json"]
