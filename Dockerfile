# The operator image. Built by CI/CD elsewhere (our dev machines have no Docker engine).
# syntax=docker/dockerfile:1
FROM python:3.11-slim AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project
COPY operator/ operator/
RUN uv sync --locked --no-dev --no-editable

FROM python:3.11-slim
RUN useradd --uid 65532 --no-create-home --shell /usr/sbin/nologin harness
COPY --from=build /src/.venv /opt/harness-operator
ENV PATH=/opt/harness-operator/bin:$PATH PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE 8080 9100
ENTRYPOINT ["harness-operator", "run", "--liveness", "http://0.0.0.0:8080/healthz", "--log-json"]
