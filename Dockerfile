# Sluice in a container: `docker build -t sluice .` then run the server or a worker from the same image
# (docs/deploy.md, "Docker"). The build stage installs the package and its pinned dependencies into a
# virtual environment; the final stage gets that environment only: no compiler, no pip, no sources,
# and a user of its own.

FROM python:3.11.11-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY src ./src
RUN python -m venv /opt/sluice \
    && /opt/sluice/bin/pip install --no-cache-dir -c constraints.txt . \
    && /opt/sluice/bin/pip uninstall --yes pip setuptools \
    && find /opt/sluice -name '__pycache__' -prune -exec rm -rf {} +

FROM python:3.11.11-slim-bookworm

# The base image's own pip and setuptools are no use at run time either.
RUN python -m pip uninstall --yes pip setuptools wheel \
    && groupadd --system --gid 10001 sluice \
    && useradd --system --uid 10001 --gid sluice --home-dir /var/lib/sluice --create-home sluice \
    && chmod 0700 /var/lib/sluice

COPY --from=build /opt/sluice /opt/sluice

ENV PATH=/opt/sluice/bin:$PATH \
    SLUICE_HOME=/var/lib/sluice \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SLUICE_LOG_FORMAT=json

USER 10001:10001
WORKDIR /var/lib/sluice
VOLUME ["/var/lib/sluice"]
# 8080: the API (`sluice server`); 9464: a worker's /healthz, /readyz and /metrics.
EXPOSE 8080 9464

ENTRYPOINT ["sluice"]
CMD ["server", "--host", "0.0.0.0", "--port", "8080"]
