# One image for every part of the shop: the command says which.
#   docker run IMAGE service assemble     (or bake, delivery, status)
#   docker run IMAGE web                  (the web app)
#   docker run IMAGE topics create        (once, before the services start)
# The shop reaches an outside Kafka cluster and read model: see "Running on a cluster" in
# docs/running/deployment.md for the settings each part needs.
FROM python:3.12.8-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIZZASHOP_STATE_DIR=/var/lib/pizzashop \
    PIZZASHOP_CACHE_DIR=/var/lib/pizzashop/cache \
    PIZZASHOP_WEB_HOST=0.0.0.0 \
    PIZZASHOP_WEB_PORT=8000 \
    PIZZASHOP_OBSERVE_HOST=0.0.0.0 \
    PIZZASHOP_OBSERVE_PORT=9100 \
    PIZZASHOP_LOG_FORMAT=json

RUN groupadd --system --gid 10001 pizzashop \
    && useradd --system --uid 10001 --gid pizzashop --home-dir /var/lib/pizzashop \
       --create-home --shell /usr/sbin/nologin pizzashop

WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
COPY scripts/uv-requirements.txt ./scripts/
COPY src ./src
# Its dependencies exactly as uv.lock has them (versions and hashes), then the shop itself.
RUN pip install --no-cache-dir --require-hashes -r scripts/uv-requirements.txt \
    && uv export --frozen --extra postgres --no-emit-project --no-header -o locked.txt \
    && pip install --no-cache-dir --require-hashes -r locked.txt \
    && pip install --no-cache-dir --no-deps . \
    && pip uninstall --yes uv && rm -rf /src

WORKDIR /var/lib/pizzashop
USER 10001:10001

# The web app on 8000; a service shows /healthz, /readyz and /metrics on 9100.
EXPOSE 8000 9100

# Health is checked by the orchestrator, which knows each part's port: see deploy/.
ENTRYPOINT ["pizzashop"]
CMD ["service", "assemble"]
