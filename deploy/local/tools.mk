# Command-line tools the test suite uses, built into .cache/bin/ with the Go toolchain.
# Included from the root Makefile; all paths are relative to the repository root.
#
#   make tools        build (or reuse) helm, for the chart tests in tests/deploy
#   make compose      build the docker compose plugin (not needed by `make test`: without
#                     it the test that runs `docker compose config` skips)
#
# Outside CI a tool that cannot be built is a warning (its tests then skip, saying why);
# with CI=true it is a failure, like the services in services.mk.

TOOLS_BIN    ?= .cache/bin
HELM_VERSION ?= v3.19.5
HELM         := $(TOOLS_BIN)/helm
GO           ?= go
# What helm's release builds stamp in: its own version, and the Kubernetes version that
# `helm template` and `helm lint` assume without a cluster (that of its client libraries,
# 1.34 for helm 3.19; `go install` alone would leave 1.20).
HELM_LDFLAGS ?= -s -w -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
  $(foreach pkg,chartutil lint/rules,-X helm.sh/helm/v3/pkg/$(pkg).k8sVersionMajor=1 \
    -X helm.sh/helm/v3/pkg/$(pkg).k8sVersionMinor=34)

COMPOSE_VERSION ?= v2.40.3

.PHONY: tools helm compose

tools: helm

# The version is part of the stamp, so changing HELM_VERSION rebuilds helm.
helm: $(TOOLS_BIN)/.helm-$(HELM_VERSION)

$(TOOLS_BIN)/.helm-$(HELM_VERSION):
	@mkdir -p $(TOOLS_BIN)
	@if command -v $(GO) >/dev/null 2>&1 && \
	    GOBIN=$(abspath $(TOOLS_BIN)) $(GO) install -ldflags '$(HELM_LDFLAGS)' \
	      helm.sh/helm/v3/cmd/helm@$(HELM_VERSION); then \
	  rm -f $(TOOLS_BIN)/.helm-*; touch $@; \
	elif [ "$(CI)" = true ] || [ "$(CI)" = 1 ]; then \
	  echo "tools: ERROR: could not build helm $(HELM_VERSION) (needs Go and the module proxy)" >&2; exit 1; \
	else \
	  echo "tools: WARNING: could not build helm $(HELM_VERSION); the chart tests will skip" >&2; \
	fi

# compose's go.mod has replace directives, which `go install pkg@version` refuses: build it
# inside its downloaded module instead.
compose: $(TOOLS_BIN)/.compose-$(COMPOSE_VERSION)

$(TOOLS_BIN)/.compose-$(COMPOSE_VERSION):
	@mkdir -p $(TOOLS_BIN)
	dir=$$($(GO) mod download -json github.com/docker/compose/v2@$(COMPOSE_VERSION) \
	  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p') && test -n "$$dir" && \
	  (cd "$$dir" && $(GO) build -trimpath -o $(abspath $(TOOLS_BIN))/docker-compose ./cmd)
	rm -f $(TOOLS_BIN)/.compose-*; touch $@
