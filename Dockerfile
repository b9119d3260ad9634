# syntax=docker/dockerfile:1
# segrepro image: the locked environment, run as a non-root user.
#   CPU:  docker build -t segrepro:cpu .
#   CUDA: docker build --build-arg VARIANT=cuda -t segrepro:cuda .
# The repository is mounted at run time (see README), so data, checkpoints and
# the DVC cache stay on the host.
ARG BASE_IMAGE=python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91
FROM ${BASE_IMAGE}

# cpu: PyTorch's CPU wheel index; cuda: PyPI's torch, which bundles the CUDA runtime.
ARG VARIANT=cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLBACKEND=Agg

# git: DVC and DVCLive read the repository state.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends git \
 && rm -rf /var/lib/apt/lists/* \
 && git config --system --add safe.directory /repo

WORKDIR /opt/segrepro
COPY requirements.lock pyproject.toml README.md ./
COPY src ./src
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# segrepro itself is installed from the copied source (DL3013 does not apply).
# hadolint ignore=DL3013
RUN case "${VARIANT}" in \
      cpu) torch_index=(--index-url https://download.pytorch.org/whl/cpu) ;; \
      cuda) torch_index=() ;; \
      *) echo "VARIANT must be cpu or cuda, got ${VARIANT}" >&2; exit 1 ;; \
    esac \
 && python -m pip install "${torch_index[@]}" torch==2.13.0 \
 && python -m pip install -r requirements.lock \
 && python -m pip install --no-deps . \
 && python -m ipykernel install --sys-prefix --name python3

RUN useradd --create-home --uid 1000 segrepro
USER 1000:1000
WORKDIR /repo
# The mounted checkout's source wins over the copy baked into the image.
ENV PYTHONPATH=/repo/src
ENTRYPOINT []
CMD ["dvc", "repro"]
