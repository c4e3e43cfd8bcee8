# hhar-stream: every target is listed by `make help` (the default).
SHELL := /bin/bash
PYTHON ?= python3
HHAR ?= hhar
MVN ?= mvn -B -q -Dstyle.color=never
HOME_DIR := .hhar
KAFKA_LIBS := $(HOME_DIR)/kafka/libs
SPARK_JARS := $(HOME_DIR)/spark-jars
STAMP_PY := $(HOME_DIR)/.python-installed
TOPIC ?=
DEMO_SECONDS ?=
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup browser prometheus kafka-up kafka-down kafka-status data produce process watch dashboard \
        demo profile topics consume test test-unit reliability lint typecheck bench clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(STAMP_PY) $(KAFKA_LIBS)/.complete $(SPARK_JARS)/.complete browser prometheus ## install Python packages, resolve the Kafka and Spark jars (Maven), the test browser and Prometheus

# The dashboard's browser test drives Debian's chromium with its chromedriver (no browser
# download); installed with apt-get where missing, else a warning (only that test needs it).
browser: ## install Debian's chromium and chromium-driver where missing (the dashboard's browser test)
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium and chromium-driver (the dashboard's browser test)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	else \
		echo "warning: chromium or chromedriver missing: install Debian's chromium and chromium-driver for the dashboard's browser test" >&2; \
	fi

# The metrics test scrapes a real producer and processor with Debian's prometheus (and checks
# the compose profile's config with its promtool); installed like the browser.
prometheus: ## install Debian's prometheus where missing (the metrics tests)
	@if command -v prometheus >/dev/null && command -v promtool >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing prometheus (the metrics tests)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus; \
	else \
		echo "warning: prometheus or promtool missing: install Debian's prometheus for the metrics tests" >&2; \
	fi

$(STAMP_PY): pyproject.toml
	@command -v java >/dev/null || { echo "error: java not found: install a Java 17+ runtime" >&2; exit 2; }
	@command -v mvn >/dev/null || { echo "error: mvn not found: install Maven (apt-get install maven)" >&2; exit 2; }
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@mkdir -p $(HOME_DIR) && touch $@

$(KAFKA_LIBS)/.complete: tools/kafka/pom.xml
	@rm -rf $(KAFKA_LIBS) && mkdir -p $(KAFKA_LIBS)
	$(MVN) -f tools/kafka/pom.xml dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$(CURDIR)/$(KAFKA_LIBS)"
	@touch $@

$(SPARK_JARS)/.complete: tools/spark-kafka/pom.xml
	@rm -rf $(SPARK_JARS) && mkdir -p $(SPARK_JARS)
	$(MVN) -f tools/spark-kafka/pom.xml dependency:copy-dependencies -DoutputDirectory="$(CURDIR)/$(SPARK_JARS)"
	@touch $@

kafka-up: setup ## start the local Kafka broker (127.0.0.1:9092)
	$(HHAR) kafka up

kafka-down: ## stop the local Kafka broker
	$(HHAR) kafka down

kafka-status: ## say whether the local broker answers
	$(HHAR) kafka status

topics: ## list the broker's topics (Kafka's TopicCommand)
	$(HHAR) kafka topics

consume: ## print records of TOPIC=... with keys, timestamps and headers
	@test -n "$(TOPIC)" || { echo "usage: make consume TOPIC=<topic> [MAX=10]" >&2; exit 2; }
	$(HHAR) kafka consume "$(TOPIC)" --max $(or $(MAX),10)

data: $(STAMP_PY) ## generate the HHAR-like data set (6,240,991 rows, 80 files) into $HHAR_DATA (ROWS=, SEED=)
	$(HHAR) data synth $(if $(ROWS),--rows $(ROWS)) $(if $(SEED),--seed $(SEED))

produce: $(STAMP_PY) ## replay SOURCE=... (default: $HHAR_DATA) into the events topic; more flags in ARGS="--speedup 10"
	$(HHAR) produce $(if $(SOURCE),--source "$(SOURCE)") $(ARGS)

process: setup ## run the streaming queries on the events topic; more flags in ARGS="--available-now"
	$(HHAR) process $(ARGS)

profile: setup ## profile SOURCE=... (default: $HHAR_DATA): inventory, schema, counts, partitions
	$(HHAR) profile $(if $(SOURCE),--source "$(SOURCE)") $(ARGS)

demo: setup ## the main job: broker, generated data, producer, processor, dashboard, live view (DEMO_SECONDS=N)
	$(HHAR) demo $(if $(DEMO_SECONDS),--seconds $(DEMO_SECONDS))

watch: ## live view of the result topics
	$(HHAR) watch

dashboard: ## live web page of the results and the pipeline's health (http://127.0.0.1:8050)
	$(HHAR) dashboard

test: setup ## run every test (unit, Kafka, Spark, end to end) as CI does
	$(PYTHON) -m pytest $(PYTEST_ARGS)

test-unit: setup ## run only the fast tests that need neither Kafka nor Spark
	$(PYTHON) -m pytest -m "not kafka and not spark" $(PYTEST_ARGS)

reliability: setup ## run the reliability scenarios and write their table into RELIABILITY.md
	HHAR_RELIABILITY_DOC=RELIABILITY.md $(PYTHON) -m pytest tests/reliability $(PYTEST_ARGS)

lint: $(STAMP_PY) ## what CI checks before the tests: ruff check, ruff format --check, mypy (never modifies files)
	@status=0; \
	$(PYTHON) -m ruff check . || status=1; \
	$(PYTHON) -m ruff format --check . || status=1; \
	$(PYTHON) tools/typecheck.py || status=1; \
	exit $$status

typecheck: $(STAMP_PY) ## type-check the package with mypy (strict; config in pyproject.toml)
	$(PYTHON) tools/typecheck.py

bench: setup ## run the benchmark suite (not a test; about 70 min on 2 cores): one table into BENCHMARKS.md; ARGS="--quick" for a smoke run
	$(PYTHON) bench/run_all.py $(ARGS)

clean: ## remove the local broker state, checkpoints and caches (keeps the jars)
	-$(HHAR) kafka down
	rm -rf $(HOME_DIR)/kafka/run $(HOME_DIR)/checkpoints .pytest_cache .ruff_cache .mypy_cache \
		build/typecheck spark-warehouse
