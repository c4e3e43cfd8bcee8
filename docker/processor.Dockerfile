# The Spark processor: Python + a Java 17 runtime; Spark's Kafka connector comes through
# spark.jars.packages at start-up (cached in the /ivy volume).
FROM python:3.11-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY hhar_stream ./hhar_stream
COPY schemas ./schemas
COPY producer ./producer
COPY processor ./processor
RUN pip install --no-cache-dir .
ENTRYPOINT []
CMD ["hhar", "process"]
