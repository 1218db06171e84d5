# syntax=docker/dockerfile:1
#
# PrefOnline worker image. Build (from the repository root):
#   docker build -t prefonline:dev .                                   # CPU image (TorchSharp-cpu)
#   docker build --build-arg TORCH_BACKEND=cuda -t prefonline:gpu .    # GPU image (TorchSharp-cuda-linux, CUDA 12.8)
# Run the embedded demo (no Kafka):
#   docker run --rm -p 8080:8080 --read-only --tmpfs /tmp -v prefonline-ckpt:/var/lib/prefonline prefonline:dev
# On a GPU: docker run --gpus all ... -e PREFONLINE__Model__Device=cuda prefonline:gpu
# Any verb works: docker run --rm prefonline:dev checkpoint list
#
# Stage "build" publishes the .NET app with the same MSBuild switch as a local build
# (-p:TorchBackend=cpu|cuda, Directory.Build.props). Its apt packages are dev.sh's build packages
# (APT_PACKAGES minus the test-only tools); tests/PrefOnline.Deployment.Tests checks the two lists agree.
# The tensor engine (TorchSharp, LibTorch 2.10) and the Kafka client (Confluent.Kafka with librdkafka 2.16's
# glibc build, centos8-librdkafka.so: OpenSSL 3 static, no Cyrus SASL) come from NuGet and are published into
# /app with their native libraries, with the finalizer guard gcc compiles in front of TorchSharp's (README
# "Tensor engine"). The project's own native kernels (src/PrefOnline.Kernels: the fused CPU decoder, plain
# C++17) are built by the same publish with cmake and g++ and need only the C/C++ runtimes.
# Every stage is Ubuntu 24.04 ("noble"): its libstdc++ (GLIBCXX_3.4.33) is new enough for TorchSharp's
# libLibTorchSharp.so, so the Debian 12 load fix (build/TorchSharp.targets) finds nothing to patch here.
# The other build step there, MKL's vendor check answered "Intel" in libtorch_cpu.so (README "MKL on AMD
# CPUs"), does apply: PATCH_MKL_VENDOR_CHECK=false ships the library exactly as packaged.
# The runtime is the ASP.NET Core runtime image (CPU) or NVIDIA's CUDA runtime image with the same
# ASP.NET Core runtime copied in (GPU), chosen by TORCH_BACKEND. ca-certificates is also librdkafka's CA store
# (a statically linked OpenSSL probes /etc/ssl/certs unless Kafka:SslCaLocation names one).
# No HEALTHCHECK: Kubernetes probes /healthz and /readyz (helm/prefonline).

# Base images pinned by digest (the multi-platform index digest), so a rebuild uses exactly these bytes
# whatever later happens to the tags. To update: `docker buildx imagetools inspect <tag>` and copy its
# "Digest:" here, with the tag and what it carried in the comment.
# mcr.microsoft.com/dotnet/sdk:10.0-noble, .NET SDK 10.0.401 (2026-10-02)
ARG SDK_IMAGE=mcr.microsoft.com/dotnet/sdk:10.0-noble@sha256:e70cdb7f80b0348f5cb85f19a8f670fca061f033d57eed12fa003d58b0e06317
# mcr.microsoft.com/dotnet/aspnet:10.0-noble, ASP.NET Core runtime 10.0.12 (2026-10-02)
ARG ASPNET_IMAGE=mcr.microsoft.com/dotnet/aspnet:10.0-noble@sha256:222759b391a1aaf241166672c8f99b2d4ada452e7b5319f3c6e8f265a37b5ad4
# cpu | cuda: the TorchSharp runtime package and the runtime base image.
ARG TORCH_BACKEND=cpu
# false | true: MSBuild's PatchMklVendorCheck (opt-in: MKL's fast kernels on AMD CPUs by changing
# code in the bundled MKL; README "MKL on AMD CPUs" says why it is off by default).
ARG PATCH_MKL_VENDOR_CHECK=false
# The CUDA runtime TorchSharp-cuda-linux 0.107 (libtorch 2.10, CUDA 12.8) runs on; cuDNN included.
# nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
ARG CUDA_RUNTIME_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04@sha256:ac55d124da4882b497f732d8dfd9a702d5447a5f29d08d56da6f64f0a1eb34bc

FROM ${ASPNET_IMAGE} AS dotnet-aspnet

# ---------------------------------------------------------------------------------------------------
FROM ${SDK_IMAGE} AS build
ARG TORCH_BACKEND
ARG PATCH_MKL_VENDOR_CHECK
ENV DEBIAN_FRONTEND=noninteractive \
    DOTNET_CLI_TELEMETRY_OPTOUT=1 \
    DOTNET_NOLOGO=1 \
    DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        cmake gcc g++ libc6-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Restore in its own layer so source edits do not re-download packages.
COPY Directory.Build.props Directory.Build.targets Directory.Packages.props ./
COPY build/ build/
COPY src/PrefOnline.Tensors/PrefOnline.Tensors.csproj src/PrefOnline.Tensors/
COPY src/PrefOnline.Kernels/PrefOnline.Kernels.csproj src/PrefOnline.Kernels/
COPY src/PrefOnline.Learning/PrefOnline.Learning.csproj src/PrefOnline.Learning/
COPY src/PrefOnline.Benchmarks/PrefOnline.Benchmarks.csproj src/PrefOnline.Benchmarks/
COPY src/PrefOnline.Streaming/PrefOnline.Streaming.csproj src/PrefOnline.Streaming/
COPY src/PrefOnline.Experiments/PrefOnline.Experiments.csproj src/PrefOnline.Experiments/
COPY src/PrefOnline.MockKafka/PrefOnline.MockKafka.csproj src/PrefOnline.MockKafka/
COPY src/PrefOnline.Worker/PrefOnline.Worker.csproj src/PrefOnline.Worker/
COPY src/PrefOnline.Cli/PrefOnline.Cli.csproj src/PrefOnline.Cli/
RUN dotnet restore src/PrefOnline.Cli/PrefOnline.Cli.csproj -p:TorchBackend=${TORCH_BACKEND}
COPY src/ src/
COPY config/appsettings.json config/
RUN dotnet publish src/PrefOnline.Cli/PrefOnline.Cli.csproj -c Release -p:TorchBackend=${TORCH_BACKEND} \
        -p:PatchMklVendorCheck=${PATCH_MKL_VENDOR_CHECK} --no-restore -o /app \
    && test -f /app/libLibTorchSharp.so \
    && test -f /app/libPrefOnlineFinalizerGuard.so \
    && test -f /app/libprefonline_kernels.so \
    && test -f /app/centos8-librdkafka.so \
    && test -x /app/prefonline

# ---------------------------------------------------------------------------------------------------
FROM ${ASPNET_IMAGE} AS runtime-cpu

FROM ${CUDA_RUNTIME_IMAGE} AS runtime-cuda
COPY --from=dotnet-aspnet /usr/share/dotnet /usr/share/dotnet
RUN ln -s /usr/share/dotnet/dotnet /usr/bin/dotnet

# ---------------------------------------------------------------------------------------------------
FROM runtime-${TORCH_BACKEND} AS runtime
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates libssl3t64 zlib1g tzdata \
    && rm -rf /var/lib/apt/lists/*

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
