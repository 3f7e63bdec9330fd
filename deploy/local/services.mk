# Local test services (Kafka + PostgreSQL) for Milepost; see deploy/local/services.sh --help.
# Included from the root Makefile; all paths are relative to the repository root.
#
#   make services-up                         start/reuse both, write .cache/services.env
#   make services-up SERVICES_FLAGS=--optional   outside CI: a missing service is only a warning
#   make services-down                       stop both (data under .cache/ is kept)
#   make services-status                     show what runs
#
# A test recipe can load the connection settings with $(SERVICES_ENV_LOAD), e.g.
#   test: services-up
#   	$(SERVICES_ENV_LOAD) .venv/bin/python -m pytest
# (services.env holds KAFKA_BOOTSTRAP_SERVERS and MILEPOST_TEST_DATABASE_URL for the
# services that are up; variables already set in the environment are passed through.)

SERVICES_SH    ?= deploy/local/services.sh
SERVICES_ENV   ?= .cache/services.env
SERVICES_FLAGS ?=
SERVICES_ENV_LOAD = set -a; if [ -f $(SERVICES_ENV) ]; then . ./$(SERVICES_ENV); fi; set +a;

.PHONY: services-up services-down services-status

services-up:
	bash $(SERVICES_SH) $(SERVICES_FLAGS) up

services-down:
	bash $(SERVICES_SH) down

services-status:
	bash $(SERVICES_SH) status
