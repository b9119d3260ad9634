# segrepro image: the locked environment, run as a non-root user.
#   CPU:  docker build -t segrepro:cpu .
#   CUDA: docker build --build-arg VARIANT=cuda -t segrepro:cuda .
# The repository is mounted at run time (see README, "Container"), so data,
# checkpoints and the DVC cache stay on the host. No BuildKit-only syntax (and no
# `# syntax=` line, which would make BuildKit fetch a frontend image): the legacy
# builder and air-gapped BuildKit builds read this file alike.
# Air-gapped: --build-arg BASE_IMAGE=<a local python 3.11.5+ image> --build-arg TORCH_INDEX_URL=
ARG BASE_IMAGE=python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91
FROM ${BASE_IMAGE}

# cpu: PyTorch's CPU wheel; cuda: PyPI's torch, which bundles the CUDA runtime.
ARG VARIANT=cpu
# Where pip looks for torch: "variant" = PyTorch's CPU index for cpu, PyPI for cuda;
# empty = pip's own configuration (PIP_INDEX_URL, PIP_FIND_LINKS, pip.conf: a mirror
# or local wheels); anything else = that index URL.
ARG TORCH_INDEX_URL=variant
# The image's default user. A plain `docker run` (no --user) can write a mounted
# checkout only if it belongs to this uid/gid; the stage runner passes the caller's own.
ARG USER_UID=1000
ARG USER_GID=1000
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLBACKEND=Agg

# git: DVC and DVCLive read the repository state. The checkout is mounted at a path
# and with an owner only known at run time, so every directory is a safe one.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends git \
 && rm -rf /var/lib/apt/lists/* \
 && git config --system --add safe.directory '*'

WORKDIR /opt/segrepro
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The locked dependencies first, in their own layer: a change to src/ reinstalls
# only segrepro itself, not the 2 GB below.
COPY requirements.lock ./
# torch's pin is read from the lock (DL3013 does not apply).
# hadolint ignore=DL3013
RUN case "${VARIANT}" in \
      cpu) index=https://download.pytorch.org/whl/cpu ;; \
      cuda) index= ;; \
      *) echo "VARIANT must be cpu or cuda, got ${VARIANT}" >&2; exit 1 ;; \
    esac \
 && if [[ "${TORCH_INDEX_URL}" != variant ]]; then index=${TORCH_INDEX_URL}; fi \
 && torch_index=() && if [[ -n "${index}" ]]; then torch_index=(--index-url "${index}"); fi \
 && python -m pip install "${torch_index[@]}" "$(grep -E '^torch==' requirements.lock)" \
 && python -m pip install -r requirements.lock \
 && python -m ipykernel install --sys-prefix --name python3

COPY pyproject.toml README.md ./
COPY src ./src
# segrepro itself is installed from the copied source (DL3013 does not apply).
# hadolint ignore=DL3013
RUN python -m pip install --no-deps .

# A HOME any uid can write (matplotlib, Jupyter and DVC keep caches there): the runner
# starts containers as the caller's uid, which may have no entry in /etc/passwd. USER, for
# the same reason: Python's getpass.getuser() (torch.compile's cache name) reads it first.
RUN [[ "${USER_UID}" != 0 && "${USER_GID}" != 0 ]] || { echo "USER_UID/USER_GID must not be 0" >&2; exit 1; } \
 && (getent group "${USER_GID}" >/dev/null || groupadd --gid "${USER_GID}" segrepro) \
 && useradd --uid "${USER_UID}" --gid "${USER_GID}" --home-dir /home/segrepro --create-home segrepro \
 && chmod 1777 /home/segrepro
ENV HOME=/home/segrepro \
    USER=segrepro
USER ${USER_UID}:${USER_GID}
WORKDIR /repo
# The mounted checkout's source wins over the copy baked into the image
# (the runner sets this to <checkout>/src, mounted at the same path as on the host).
ENV PYTHONPATH=/repo/src
ENTRYPOINT []
CMD ["dvc", "repro"]
