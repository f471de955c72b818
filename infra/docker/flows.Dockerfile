# syntax=docker/dockerfile:1
# The flows image: ghcr.io/riskops/riskops-flows. What a Prefect `kubernetes` work pool runs as
# a flow run's Job: the riskops flows, their library and Java 17 for Spark (PySpark 4.3).
#
# Build from the repository root:
#   docker build -f infra/docker/flows.Dockerfile -t ghcr.io/riskops/riskops-flows:dev .
#
# Base image: pinned by tag (Python 3.11.14 on Debian 12 "bookworm", which ships
# openjdk-17-jre-headless, the Java this project's Spark is tested on). A tag can be re-pushed;
# for a release, pin the digest too, resolved once with
#   docker buildx imagetools inspect python:3.11.14-slim-bookworm --format '{{json .Manifest.Digest}}'
# and written as  FROM python:3.11.14-slim-bookworm@sha256:<digest>  in BOTH stages. The release
# workflow records the digest of the image it pushes either way.

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

# Prefect runs a deployment's entrypoint (flows/train.py:train) relative to the working directory
# that the production target's pull step sets: /opt/riskops (riskops.kube.production). That
# directory holds links to the installed packages, so the code that runs is the wheel's.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN site="$(/opt/riskops/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
    && for package in flows blocks deployments; do \
         ln -s "${site}/${package}" "/opt/riskops/${package}"; \
       done

# ---- final: the same base, Java for Spark, the venv, a non-root user -----------------------------
FROM python:3.11.14-slim-bookworm

# Debian keeps only the current (security-patched) build of a package in its archive, so an
# exact version pin here would break the build at the next security update (hadolint DL3008).
# The image digest the release records is what pins the result. The slim base has no man
# directories, which the JRE's update-alternatives links into: create the one it needs. tini is PID 1: it forwards the worker's
# SIGTERM and reaps Spark's JVM and Python worker processes.
# hadolint ignore=DL3008
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless tini \
    && rm -rf /var/lib/apt/lists/*

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
    RISKOPS_PROJECT_DIR=/opt/riskops \
    PYSPARK_PYTHON=/opt/riskops/venv/bin/python

WORKDIR /opt/riskops
USER 10001:10001

# No HEALTHCHECK: a flow run is a Job that ends; Kubernetes and Prefect watch the pod and the
# run's state (and heartbeats), and there is no long-lived endpoint to ask.
#
# The Prefect kubernetes worker starts a flow run with the container's args set to
# `prefect flow-run execute` (its base job template's "args": "{{ command }}"), so the entrypoint
# only wraps it in tini; the CMD is the same command, for `docker run` by hand.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["prefect", "flow-run", "execute"]
