# The Spark processor: Python + a Java 17 runtime; Spark's Kafka connector comes through
# spark.jars.packages at start-up (cached in the /ivy volume).
# Debian 12 (bookworm): Debian 13 has no openjdk-17 package.
FROM python:3.11.14-slim-bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
    && rm -rf /var/lib/apt/lists/*
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
CMD ["hhar", "process"]
