# Sigma's image: the service, the job workers and Ray itself (KubeRay runs `ray start` in it).
#   docker build -t sigma:0.1.0 .
#   docker run -p 8001:8001 -v sigma-numba:/var/cache/sigma/numba sigma:0.1.0
# Versions are pinned by constraints.txt (the set the test suite ran with). Settings are
# SIGMA_* environment variables (a Kubernetes Secret in deploy/kuberay/); none is baked in.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SIGMA_HOME=/home/sigma/.sigma \
    NUMBA_CACHE_DIR=/var/cache/sigma/numba

# procps: `ray stop` and KubeRay's probes look at processes; tini reaps Ray's children.
RUN apt-get update \
 && apt-get install -y --no-install-recommends procps tini \
 && rm -rf /var/lib/apt/lists/*

# Non-root: uid 1000 (KubeRay's securityContext runs as this user too).
RUN groupadd --gid 1000 sigma \
 && useradd --uid 1000 --gid sigma --create-home --shell /bin/bash sigma \
 && mkdir -p /opt/sigma "$NUMBA_CACHE_DIR" "$SIGMA_HOME" \
 && chown -R sigma:sigma /opt/sigma "$NUMBA_CACHE_DIR" "$SIGMA_HOME"

WORKDIR /opt/sigma

# Dependencies first (a layer that changes only with pyproject.toml / constraints.txt) ...
COPY --chown=sigma:sigma pyproject.toml constraints.txt README.md ./
RUN mkdir -p serve_app services tuning cluster compute sigma_client \
 && pip install -c constraints.txt . \
 && pip uninstall -y sigma

# ... then the code, installed with the same pins.
COPY --chown=sigma:sigma serve_app ./serve_app
COPY --chown=sigma:sigma services ./services
COPY --chown=sigma:sigma tuning ./tuning
COPY --chown=sigma:sigma cluster ./cluster
COPY --chown=sigma:sigma compute ./compute
COPY --chown=sigma:sigma sigma_client ./sigma_client
COPY --chown=sigma:sigma deploy/serve.yaml ./deploy/serve.yaml
RUN pip install --no-deps -c constraints.txt .

USER sigma

# Compile the numba kernels once into the cache directory: containers start warm. The cache
# is also a volume, so kernels compiled at run time (another CPU model) survive restarts.
RUN sigma warm
VOLUME ["/var/cache/sigma/numba"]

# API (Serve), Ray dashboard, Ray client, GCS, metrics export
EXPOSE 8001 8265 10001 6379 8080

ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["sigma", "serve", "--host", "0.0.0.0", "--port", "8001"]
