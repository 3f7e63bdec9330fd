# Command-line tools the test suite uses, built into .cache/bin/ with the Go toolchain, and
# the Node SDKs it sends traffic with, installed with npm from their package-lock.json.
# Included from the root Makefile; all paths are relative to the repository root.
#
#   make tools        build (or reuse) all of them; `make test` does this first
#   make helm         helm, for the chart tests in tests/deploy
#   make compose      the docker compose plugin, for `docker compose config` on compose.yaml
#   make promtool     Prometheus's promtool, for `promtool check rules` on the alert rules
#   make node-sdks    RudderStack's Node SDK, for the ingest tests in tests/services/ingest
#   make chromium     Debian's chromium and a Chinese font, the browser of the console's
#                     Playwright tests (tests/services/console); Playwright never downloads one
#
# A first build downloads the modules and compiles for a few minutes (promtool about
# seven); later builds, also in a fresh clone, reuse Go's module and build caches and take
# seconds. Outside CI a tool that cannot be built is a warning (its tests then skip, saying
# why); with CI=true it is a failure, like the services in services.mk.

TOOLS_BIN    ?= .cache/bin
GO           ?= go
HELM_VERSION ?= v3.19.5
HELM         := $(TOOLS_BIN)/helm
# What helm's release builds stamp in: its own version, and the Kubernetes version that
# `helm template` and `helm lint` assume without a cluster (that of its client libraries,
# 1.34 for helm 3.19; `go install` alone would leave 1.20).
HELM_LDFLAGS ?= -s -w -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
  $(foreach pkg,chartutil lint/rules,-X helm.sh/helm/v3/pkg/$(pkg).k8sVersionMajor=1 \
    -X helm.sh/helm/v3/pkg/$(pkg).k8sVersionMinor=34)
COMPOSE_VERSION  ?= v2.40.3
# Prometheus 3.7.3's Go module version.
PROMTOOL_VERSION ?= v0.307.3

NODE_SDKS ?= tests/services/ingest/node

CHROMIUM ?= /usr/bin/chromium
# A CJK font, so the zh-CN screenshots show Chinese rather than empty boxes.
CJK_FONT ?= /usr/share/fonts/truetype/wqy/wqy-microhei.ttc

.PHONY: tools helm compose promtool node-sdks chromium

tools: helm compose promtool node-sdks chromium ## Build helm, docker compose and promtool into .cache/bin; install the Node SDKs and chromium

# When a build fails: an error under CI, a warning elsewhere.
define tool_failed
if [ "$(CI)" = true ] || [ "$(CI)" = 1 ]; then \
  echo "tools: ERROR: could not build $(1) (needs $(or $(2),Go and the module proxy))" >&2; exit 1; \
else \
  echo "tools: WARNING: could not build $(1); the tests that need it will skip" >&2; \
fi
endef

# Build package $(3) of module $(1)@$(2) inside the downloaded module, as $(TOOLS_BIN)/$(4).
# (`go install pkg@version` refuses modules whose go.mod has replace or exclude directives,
# as compose's and Prometheus's have.)
define build_in_module
dir=$$($(GO) mod download -json $(1)@$(2) \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p') && test -n "$$dir" && \
  (cd "$$dir" && $(GO) build -trimpath -ldflags '-s -w' -o $(abspath $(TOOLS_BIN))/$(4) $(3))
endef

# Each version is part of its stamp, so changing a version rebuilds that tool.
helm: $(TOOLS_BIN)/.helm-$(HELM_VERSION)
compose: $(TOOLS_BIN)/.compose-$(COMPOSE_VERSION)
promtool: $(TOOLS_BIN)/.promtool-$(PROMTOOL_VERSION)

$(TOOLS_BIN)/.helm-$(HELM_VERSION):
	@mkdir -p $(TOOLS_BIN)
	@if command -v $(GO) >/dev/null 2>&1 && \
	    GOBIN=$(abspath $(TOOLS_BIN)) $(GO) install -ldflags '$(HELM_LDFLAGS)' \
	      helm.sh/helm/v3/cmd/helm@$(HELM_VERSION); then \
	  rm -f $(TOOLS_BIN)/.helm-*; touch $@; \
	else $(call tool_failed,helm $(HELM_VERSION)); fi

$(TOOLS_BIN)/.compose-$(COMPOSE_VERSION):
	@mkdir -p $(TOOLS_BIN)
	@if $(call build_in_module,github.com/docker/compose/v2,$(COMPOSE_VERSION),./cmd,docker-compose); then \
	  rm -f $(TOOLS_BIN)/.compose-*; touch $@; \
	else $(call tool_failed,docker compose $(COMPOSE_VERSION)); fi

$(TOOLS_BIN)/.promtool-$(PROMTOOL_VERSION):
	@mkdir -p $(TOOLS_BIN)
	@echo "tools: building promtool $(PROMTOOL_VERSION) (the first build takes several minutes)"
	@if $(call build_in_module,github.com/prometheus/prometheus,$(PROMTOOL_VERSION),./cmd/promtool,promtool); then \
	  rm -f $(TOOLS_BIN)/.promtool-*; touch $@; \
	else $(call tool_failed,promtool $(PROMTOOL_VERSION)); fi

# npm ci installs exactly the locked versions; no install scripts are needed (or run).
node-sdks: $(NODE_SDKS)/node_modules/.installed

$(NODE_SDKS)/node_modules/.installed: $(NODE_SDKS)/package-lock.json
	@if command -v npm >/dev/null 2>&1 && \
	    npm ci --prefix $(NODE_SDKS) --ignore-scripts --no-audit --no-fund --silent; then \
	  touch $@; \
	else $(call tool_failed,the Node SDKs in $(NODE_SDKS),Node and the npm registry); fi

# Debian's chromium and font from the distribution's packages (as root, or through sudo).
chromium: $(CHROMIUM) $(CJK_FONT)

$(CHROMIUM) $(CJK_FONT):
	@sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	if command -v apt-get >/dev/null 2>&1 && $$sudo apt-get update -qq && \
	    $$sudo apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; then \
	  echo "tools: installed chromium and fonts-wqy-microhei"; \
	else $(call tool_failed,chromium,apt-get and Debian's packages); fi
