# syntax=docker/dockerfile:1
# The scoring image: ghcr.io/riskops/riskops-scoring. Runs the online scoring service
# (`riskops serve`, i.e. riskops.serving.server.main) on port 5004. No Java: Spark never runs here.
#
# Build from the repository root:
#   docker build -f infra/docker/scoring.Dockerfile -t ghcr.io/riskops/riskops-scoring:dev .
#
# Base image: pinned by tag (Python 3.11.14 on Debian 12 "bookworm", the Debian this project is
# tested on). A tag can be re-pushed; for a release, pin the digest too, resolved once with
#   docker buildx imagetools inspect python:3.11.14-slim-bookworm --format '{{json .Manifest.Digest}}'
# and written as  FROM python:3.11.14-slim-bookworm@sha256:<digest>  in BOTH stages (Dependabot or
# Renovate then raise a pull request when the digest moves). The release workflow records the digest
# of the image it pushes either way.

# ---- builder: build the riskops wheel, install it and its pinned dependencies into a venv --------
FROM python:3.11.14-slim-bookworm AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /build
RUN python -m venv /opt/riskops/venv

# Every version, the build tools' included, is the one constraints.txt pins. Dependencies come
# from wheels only (--only-binary), except PySpark, which PyPI ships as a pure-Python sdist: it is
# built with the pinned setuptools (--no-build-isolation), so no compiler is needed in any stage.
COPY constraints.txt ./
RUN /opt/riskops/venv/bin/pip install --only-binary=:all: -c constraints.txt \
        hatchling setuptools wheel

COPY pyproject.toml README.md ./
COPY src ./src
COPY flows ./flows
COPY blocks ./blocks
COPY deployments ./deployments
RUN /opt/riskops/venv/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /build/dist . \
    && /opt/riskops/venv/bin/pip install --no-build-isolation --only-binary=:all: \
        --no-binary=pyspark -c constraints.txt /build/dist/riskops-*.whl \
    && /opt/riskops/venv/bin/pip check \
    && /opt/riskops/venv/bin/riskops --help > /dev/null

# ---- final: the same base, the venv, a non-root user ---------------------------------------------
FROM python:3.11.14-slim-bookworm

RUN groupadd --system --gid 10001 riskops \
    && useradd --system --uid 10001 --gid riskops --no-create-home \
       --home-dir /var/lib/riskops --shell /usr/sbin/nologin riskops \
    && install -d -o riskops -g riskops -m 0750 /var/lib/riskops

COPY --from=builder /opt/riskops /opt/riskops

# The commit the image is built from (the release workflow passes --build-arg
# RISKOPS_GIT_COMMIT=$GITHUB_SHA): training records it as the code version of every model version.
# An image built without it records "unknown" unless the job environment names the commit.
ARG RISKOPS_GIT_COMMIT=""
LABEL org.opencontainers.image.revision="${RISKOPS_GIT_COMMIT}"

ENV PATH=/opt/riskops/venv/bin:$PATH \
    RISKOPS_GIT_COMMIT=${RISKOPS_GIT_COMMIT} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/riskops \
    RISKOPS_HOME=/var/lib/riskops \
    RISKOPS_SCORING_HOST=0.0.0.0 \
    RISKOPS_SCORING_PORT=5004

WORKDIR /var/lib/riskops
USER 10001:10001
EXPOSE 5004

# Kubernetes ignores HEALTHCHECK (the Deployment's probes call the same endpoints); it serves
# `docker run` and Compose. The slim base has no curl, so Python asks /health/live.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('RISKOPS_SCORING_PORT', '5004') + '/health/live', timeout=2)"]

ENTRYPOINT ["riskops", "serve"]
