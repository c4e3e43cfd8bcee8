# The producer, the data generator and `hhar watch` (no JVM needed).
FROM python:3.11.14-slim-bookworm
WORKDIR /app
COPY pyproject.toml README.md ./
COPY hhar_stream ./hhar_stream
COPY schemas ./schemas
COPY dataset ./dataset
COPY producer ./producer
COPY generator ./generator
COPY processor ./processor
RUN pip install --no-cache-dir .
ENTRYPOINT []
CMD ["hhar", "--help"]
