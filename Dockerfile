# syntax=docker/dockerfile:1
# kerasserve: one image per set of models. Build, from the repository root:
#   docker build -t kerasserve --build-arg MODELS="MobileNetV2,ResNet50" .
# GPU (needs the NVIDIA Container Toolkit on the host):
#   docker build -t kerasserve:gpu --build-arg TENSORFLOW=cuda .
# Every setting is a KERASSERVE_* environment variable (docs/deploy.md).

ARG PYTHON_VERSION=3.11

# ---- build: a virtual environment with the server's dependencies, then a wheel of the project --
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# Extras of pyproject.toml to install: server, or server,openvino.
ARG EXTRAS=server
# cpu: tensorflow-cpu; cuda: tensorflow[and-cuda] (CUDA and cuDNN come as wheels).
ARG TENSORFLOW=cpu
# Dependencies alone first, read from pyproject.toml: editing the code does not reinstall them.
COPY pyproject.toml ./
COPY deploy/docker/requirements.py /tmp/requirements.py
RUN python /tmp/requirements.py --extras "$EXTRAS" --tensorflow "$TENSORFLOW" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

COPY README.md ./
COPY batching/ batching/
COPY schemas/ schemas/
COPY service/ service/
COPY clients/python/ clients/python/
COPY clients/web/ clients/web/
# src/ holds only links to the folders above: they install as kerasserve.service, kerasserve.schemas, ...
COPY src/ src/
RUN pip wheel --no-deps --wheel-dir /dist .

# ---- runtime: the environment, the project, the weights; no compiler, no pip cache, no root ----
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="kerasserve" \
      org.opencontainers.image.description="Async inference server for keras.applications image models, with dynamic batching" \
      org.opencontainers.image.licenses="MIT"

RUN groupadd --system --gid 10001 kerasserve \
    && useradd --system --uid 10001 --gid kerasserve --create-home --home-dir /home/kerasserve \
       --shell /usr/sbin/nologin kerasserve \
    && install -d -o kerasserve -g kerasserve -m 0755 /opt/keras

# KERAS_HOME must stay writable by the serving user: Keras looks for its cache in /tmp/.keras
# instead when it is not, and would miss the weights baked in below (so no read-only root
# filesystem, and run as uid 10001).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    KERAS_HOME=/opt/keras \
    TF_CPP_MIN_LOG_LEVEL=2 \
    KERASSERVE_HOST=0.0.0.0 \
    KERASSERVE_PORT=8000 \
    KERASSERVE_WEIGHTS=imagenet \
    KERASSERVE_MAX_BODY_MB=10 \
    KERASSERVE_DRAIN_TIMEOUT_S=30

COPY --from=build /opt/venv /opt/venv
RUN --mount=type=bind,from=build,source=/dist,target=/dist \
    pip install --no-deps /dist/*.whl
COPY deploy/docker/healthcheck.py /opt/kerasserve/healthcheck.py

# Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
WORKDIR /home/kerasserve

# Models whose ImageNet weights are fetched into the image (comma-separated; empty: none, and the
# server downloads them at start, which needs network). They are also the models it serves.
ARG MODELS=MobileNetV2
ENV KERASSERVE_MODEL=${MODELS}
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN read -ra models <<< "${MODELS//,/ }" \
    && if (( ${#models[@]} )); then kerasserve fetch-weights "${models[@]}"; fi

EXPOSE 8000
# Ready (200 on /readyz) only once every model is warm; 503 while loading or draining.
HEALTHCHECK --interval=10s --timeout=5s --start-period=180s --retries=3 \
    CMD ["python", "/opt/kerasserve/healthcheck.py", "/readyz"]
# SIGTERM starts the graceful drain: the server stops accepting and finishes what it accepted
# within KERASSERVE_DRAIN_TIMEOUT_S (30 s). Give the container longer than that before SIGKILL:
# `docker run --stop-timeout 40`, compose `stop_grace_period: 40s`, Kubernetes
# `terminationGracePeriodSeconds: 45` (all set in deploy/).
STOPSIGNAL SIGTERM
ENTRYPOINT ["kerasserve"]
CMD ["serve"]
