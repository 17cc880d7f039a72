# syntax=docker/dockerfile:1
# The operator image. `BASE_IMAGE` defaults to the public Python image; the test suite builds
# it on a base made from Debian packages (docs/development.md). Any base with `python3.11`
# works: the virtualenv is created with it at /opt/harness-operator in the build stage and
# copied to the same path, so its console scripts' shebangs stay valid.
#   podman build -t harness-operator .
#   podman build --secret id=pip_cert,src=/path/to/ca.pem ...   (a private CA for pip)
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3.11 -m venv /opt/harness-operator
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
COPY operator/ operator/
COPY crds/ crds/
# The locked versions, exported from uv.lock by `make requirements`; then the project.
COPY requirements.lock ./
RUN --mount=type=secret,id=pip_cert,required=false \
    sh -c 'if [ -f /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi; \
           /opt/harness-operator/bin/pip install --require-hashes -r requirements.lock \
           && /opt/harness-operator/bin/pip install --no-deps . \
           && /opt/harness-operator/bin/python -m compileall -q /opt/harness-operator'

FROM ${BASE_IMAGE}
COPY --from=build /opt/harness-operator /opt/harness-operator
ENV PATH=/opt/harness-operator/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER 65532:65532
EXPOSE 8080 9100
# The command only: flags (liveness address, --log-json, namespaces) come from the
# chart's args, so every one of them can be changed there.
ENTRYPOINT ["harness-operator"]
CMD ["run"]
