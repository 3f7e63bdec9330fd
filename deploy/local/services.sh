#!/usr/bin/env bash
# Local test services for Milepost: a single-node KRaft Kafka broker and a PostgreSQL
# server, both bound to 127.0.0.1 and kept under <repo>/.cache/. Used by `make test`,
# `make services-up` and `make services-down`.
#
# Run `deploy/local/services.sh --help` for usage.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: deploy/local/services.sh [--optional] up | down | status
       deploy/local/services.sh kafka-up | kafka-down | pg-up | pg-down
       deploy/local/services.sh --help

  up        Start (or reuse) Kafka on 127.0.0.1:19092 and PostgreSQL on 127.0.0.1:15432,
            wait until both answer, then write .cache/services.env with
              KAFKA_BOOTSTRAP_SERVERS=...
              MILEPOST_TEST_DATABASE_URL=...
            (load it with: set -a; . .cache/services.env; set +a)
  down      Stop both services (idempotent). Data under .cache/ is kept.
  status    Show what runs.
  kafka-up, kafka-down, pg-up, pg-down
            Start or stop one of them alone (services.env is left as it is); with
            MILEPOST_SERVICES_DIR and other ports, a private broker or cluster that a
            fault test may stop and restart (tests/chaos).

Options / environment:
  --optional, MILEPOST_SERVICES_OPTIONAL=1
            A service that cannot be provisioned only prints a warning and is left out
            of services.env; `up` then exits 0. Ignored when CI=true: in CI every
            failure is fatal.
  KAFKA_BOOTSTRAP_SERVERS     already set: no local Kafka; the value goes to services.env.
  MILEPOST_TEST_DATABASE_URL  already set: no local PostgreSQL; the value goes to services.env.
  MILEPOST_SERVICES_TIMEOUT   seconds to wait for each service to become ready (default 120).
  MILEPOST_KAFKA_PORT, MILEPOST_KAFKA_CONTROLLER_PORT, MILEPOST_PG_PORT
                              override the ports (19092, 19093, 15432).
  MILEPOST_PG_BINDIR          directory holding initdb/pg_ctl (default: found on PATH
                              or in /usr/lib/postgresql/*/bin; apt-installed if missing).
  MILEPOST_PYTHON             Python with aiokafka used for the Kafka readiness check
                              (default .venv/bin/python; falls back to a Java check).
  MILEPOST_SERVICES_DIR       where data, logs, pid and env files live (default .cache).
  MILEPOST_KAFKA_LIBS         the Kafka jars (default .cache/kafka/libs, fetched once).
  MILEPOST_KAFKA_KEEP_DATA=1  a start keeps the broker's formatted data dir (topics and
                              committed offsets survive a restart); default: wiped.

Logs: .cache/kafka/broker.log, .cache/postgres/postgres.log
EOF
}

# ---------------------------------------------------------------------------
# Layout and settings. Everything lives under <repo>/.cache/.
# ---------------------------------------------------------------------------
REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
CACHE_DIR="${MILEPOST_SERVICES_DIR:-$REPO_ROOT/.cache}"
ENV_FILE="$CACHE_DIR/services.env"
LOCK_FILE="$CACHE_DIR/services.lock"
TIMEOUT="${MILEPOST_SERVICES_TIMEOUT:-120}"

KAFKA_PORT="${MILEPOST_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${MILEPOST_KAFKA_CONTROLLER_PORT:-19093}"
KAFKA_BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
KAFKA_POM="$REPO_ROOT/deploy/local/kafka/pom.xml"
KAFKA_DIR="$CACHE_DIR/kafka"
KAFKA_LIBS="${MILEPOST_KAFKA_LIBS:-$REPO_ROOT/.cache/kafka/libs}"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_CONF="$KAFKA_DIR/server.properties"
KAFKA_LOG4J="$KAFKA_DIR/log4j2.properties"
KAFKA_PID="$KAFKA_DIR/broker.pid"
KAFKA_LOG="$KAFKA_DIR/broker.log"
KAFKA_JVM_OPTS="${MILEPOST_KAFKA_JVM_OPTS:--Xms256m -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true}"

PG_PORT="${MILEPOST_PG_PORT:-15432}"
PG_DB=milepost_test
PG_USER=postgres
PG_URL="postgresql+asyncpg://$PG_USER@127.0.0.1:$PG_PORT/$PG_DB"
PG_SOCKET_DIR=/tmp
PG_LINK="$CACHE_DIR/postgres"   # a directory, or a symlink to one (see pg_prepare_dir)

PYTHON="${MILEPOST_PYTHON:-$REPO_ROOT/.venv/bin/python}"

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
log()  { printf 'services: %s\n' "$*" >&2; }
warn() { printf 'services: WARNING: %s\n' "$*" >&2; }
die()  { printf 'services: ERROR: %s\n' "$*" >&2; exit 1; }

# Print the last lines of a log file to stderr (for CI, where nobody can open the file).
show_tail() {
  [[ -f $1 ]] || return 0
  printf 'services: ---- last lines of %s ----\n' "$1" >&2
  tail -n "${2:-25}" "$1" | sed 's/^/    /' >&2
  printf 'services: ----\n' >&2
}

is_ci() { [[ ${CI:-} == true || ${CI:-} == 1 ]]; }

# True when something accepts TCP connections on host:port (bash's /dev/tcp, no nc needed).
# shellcheck disable=SC2016  # $0/$1 expand in the inner bash
port_open() { timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null; }

# Write KEY=VALUE so that both `. file` (sh) and simple dotenv readers get VALUE back.
env_line() {
  if [[ $2 =~ ^[A-Za-z0-9_.,:/@+%=-]*$ ]]; then
    printf '%s=%s\n' "$1" "$2"
  else
    printf "%s='%s'\n" "$1" "${2//\'/\'\\\'\'}"
  fi
}

# Take the per-checkout lock so two concurrent `up`/`down` calls cannot race.
# Long-lived daemons must be started with `9>&-` so they do not inherit (and hold) it.
take_lock() {
  mkdir -p "$CACHE_DIR"
  exec 9>"$LOCK_FILE"
  if command -v flock >/dev/null 2>&1; then
    flock -w "$TIMEOUT" 9 || die "another services.sh holds $LOCK_FILE for over ${TIMEOUT}s"
  fi
}

# ---------------------------------------------------------------------------
# Kafka (single node, KRaft, combined broker + controller)
# ---------------------------------------------------------------------------

# Running = pid file names a live process whose command line is this checkout's broker
# (guards against a recycled pid or another checkout's broker).
kafka_running() {
  local pid
  [[ -f $KAFKA_PID ]] || return 1
  pid=$(<"$KAFKA_PID")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "kafka.Kafka $KAFKA_CONF"
}

# Guarantees: .cache/kafka/libs holds the complete classpath resolved from pom.xml.
# A stamp (the pom's hash) marks a finished download, so an interrupted or outdated
# download is redone and a complete one is never repeated.
kafka_fetch_libs() {
  local stamp
  stamp=$(sha256sum "$KAFKA_POM" | cut -d' ' -f1)
  if [[ -f $KAFKA_LIBS/.complete && $(<"$KAFKA_LIBS/.complete") == "$stamp" ]]; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn (Maven) not found; it is needed once to download the Kafka jars"
  log "downloading Kafka jars with Maven (once) ..."
  rm -rf "$KAFKA_LIBS.partial"
  if ! mvn -q -B -Dstyle.color=never -f "$KAFKA_POM" dependency:copy-dependencies \
        -DoutputDirectory="$KAFKA_LIBS.partial" >"$KAFKA_DIR/mvn.log" 2>&1; then
    show_tail "$KAFKA_DIR/mvn.log" 40
    die "downloading the Kafka jars failed; see $KAFKA_DIR/mvn.log"
  fi
  echo "$stamp" >"$KAFKA_LIBS.partial/.complete"
  rm -rf "$KAFKA_LIBS"
  mv "$KAFKA_LIBS.partial" "$KAFKA_LIBS"
}

# Guarantees: server.properties and log4j2.properties match this script (rewritten on
# every start, so edits here take effect on the next start; the data dir is untouched).
kafka_write_config() {
  cat >"$KAFKA_CONF" <<EOF
# Generated by deploy/local/services.sh on every start; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA

# Test defaults: one replica everywhere, topics appear on first use, no rebalance delay.
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true
group.initial.rebalance.delay.ms=0
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# Keep the disk footprint of a long-lived dev broker small.
log.retention.hours=24
log.segment.bytes=67108864
EOF

  cat >"$KAFKA_LOG4J" <<'EOF'
# Generated by deploy/local/services.sh. The broker's stdout is redirected to broker.log.
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.target = SYSTEM_OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = OUT
logger.state.name = state.change.logger
logger.state.level = warn
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = warn
EOF
}

# Guarantees: the data dir is empty but for a fresh KRaft cluster id and metadata log.
# A broker started here holds only test topics, which every run creates under its own
# names; keeping them across starts would pile up the partitions of every past run until
# the broker runs out of file descriptors and stops. (A running broker is reused as is.)
# MILEPOST_KAFKA_KEEP_DATA=1 keeps a formatted data dir: a restarted broker then still
# holds its topics and committed offsets.
kafka_format() {
  if [[ ${MILEPOST_KAFKA_KEEP_DATA:-0} == 1 && -f $KAFKA_DATA/meta.properties ]]; then
    log "keeping Kafka storage in $KAFKA_DATA"
    return 0
  fi
  rm -rf "$KAFKA_DATA"
  local cid
  log "formatting Kafka storage in $KAFKA_DATA ..."
  cid=$(java -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool random-uuid 2>>"$KAFKA_DIR/format.log" | tail -n 1)
  [[ $cid =~ ^[A-Za-z0-9_-]{22}$ ]] || { show_tail "$KAFKA_DIR/format.log"; die "could not generate a Kafka cluster id (got '$cid')"; }
  if ! java -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format \
        --config "$KAFKA_CONF" --cluster-id "$cid" >>"$KAFKA_DIR/format.log" 2>&1; then
    show_tail "$KAFKA_DIR/format.log"
    die "formatting Kafka storage failed; see $KAFKA_DIR/format.log"
  fi
}

# Guarantees: the broker runs detached (own session, no stdin, survives this shell),
# its pid is in broker.pid, its output in broker.log (previous run's log: broker.log.1).
kafka_start() {
  [[ -f $KAFKA_LOG ]] && mv -f "$KAFKA_LOG" "$KAFKA_LOG.1"
  rm -f "$KAFKA_PID"
  log "starting Kafka broker on $KAFKA_BOOTSTRAP (log: $KAFKA_LOG) ..."
  # The inner bash writes its own pid and then execs java, so the pid file names the JVM.
  # shellcheck disable=SC2086,SC2016  # KAFKA_JVM_OPTS is a word list; $$/$0/$@ are the inner bash's
  nohup setsid bash -c 'echo $$ >"$0"; exec "$@"' "$KAFKA_PID" \
    java $KAFKA_JVM_OPTS \
      -Dlog4j2.configurationFile="$KAFKA_LOG4J" \
      -Dkafka.logs.dir="$KAFKA_DIR" \
      -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_CONF" \
    </dev/null >"$KAFKA_LOG" 2>&1 9>&- &
  for _ in $(seq 50); do [[ -s $KAFKA_PID ]] && return 0; sleep 0.1; done
  die "Kafka broker did not start (no pid file); see $KAFKA_LOG"
}

# True when a client can bootstrap and sees at least one broker in the cluster metadata.
# Prefers the project's Python/aiokafka (what the tests use); falls back to Kafka's own
# BrokerApiVersionsCommand when the venv is not there yet.
kafka_metadata_ok() {
  if [[ -x $PYTHON ]] && "$PYTHON" -c 'import aiokafka' 2>/dev/null; then
    timeout 20 "$PYTHON" - "$KAFKA_BOOTSTRAP" <<'EOF' >/dev/null 2>&1
import asyncio, sys
from aiokafka import AIOKafkaClient

async def main() -> int:
    client = AIOKafkaClient(bootstrap_servers=sys.argv[1], request_timeout_ms=5000)
    try:
        await client.bootstrap()
        return 0 if client.cluster.brokers() else 1
    finally:
        await client.close()

sys.exit(asyncio.run(main()))
EOF
  else
    timeout 30 java -cp "$KAFKA_LIBS/*" org.apache.kafka.tools.BrokerApiVersionsCommand \
      --bootstrap-server "$KAFKA_BOOTSTRAP" 2>/dev/null | grep -q '(id: '
  fi
}

# Guarantees on success: a broker started by this script answers on $KAFKA_BOOTSTRAP and
# serves metadata. Reuses a running one; never starts a second.
kafka_up() {
  mkdir -p "$KAFKA_DIR"
  if kafka_running; then
    log "reusing Kafka broker (pid $(<"$KAFKA_PID"))"
  else
    rm -f "$KAFKA_PID"
    local p
    for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
      if port_open 127.0.0.1 "$p"; then
        die "port 127.0.0.1:$p is taken by a process this script did not start; stop it, or set KAFKA_BOOTSTRAP_SERVERS to use an existing broker"
      fi
    done
    command -v java >/dev/null 2>&1 || die "java not found; the local Kafka broker needs Java 17+"
    kafka_fetch_libs
    kafka_write_config
    kafka_format
    kafka_start
  fi

  local deadline=$((SECONDS + TIMEOUT))
  until port_open 127.0.0.1 "$KAFKA_PORT" && kafka_metadata_ok; do
    if ! kafka_running; then
      show_tail "$KAFKA_LOG"
      die "Kafka broker exited during startup; see $KAFKA_LOG"
    fi
    if ((SECONDS >= deadline)); then
      show_tail "$KAFKA_LOG"
      die "Kafka broker not ready on $KAFKA_BOOTSTRAP after ${TIMEOUT}s; see $KAFKA_LOG"
    fi
    sleep 1
  done
  log "Kafka ready on $KAFKA_BOOTSTRAP"
}

# Guarantees: no broker started by this script runs afterwards (TERM, then KILL after 60s).
kafka_down() {
  if ! kafka_running; then
    rm -f "$KAFKA_PID"
    log "Kafka: not running"
    return 0
  fi
  local pid deadline
  pid=$(<"$KAFKA_PID")
  log "stopping Kafka broker (pid $pid) ..."
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + 60))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    warn "Kafka broker ignored TERM for 60s; sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$KAFKA_PID"
  log "Kafka stopped"
}

kafka_status() {
  if kafka_running; then
    local state="port not answering yet"
    port_open 127.0.0.1 "$KAFKA_PORT" && state="answering"
    echo "kafka:    running, pid $(<"$KAFKA_PID"), $KAFKA_BOOTSTRAP ($state); log $KAFKA_LOG"
  else
    echo "kafka:    stopped"
  fi
}

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------
PG_BINDIR=""
PG_HOME=""   # real directory behind .cache/postgres

# Run a command as the OS user that owns the cluster: `postgres` when we are root
# (the server refuses to run as root), ourselves otherwise. Runs from / so the
# postgres user never needs access to the current directory.
as_pg() {
  if ((EUID == 0)); then
    (cd / && runuser -u "$PG_USER" -- "$@")
  else
    (cd / && "$@")
  fi
}

# Sets PG_BINDIR to a directory with initdb, pg_ctl, pg_isready, psql, createdb.
pg_find_bindir() {
  local c d
  for d in ${MILEPOST_PG_BINDIR:-} \
           "$(c=$(command -v initdb 2>/dev/null) && dirname -- "$(readlink -f -- "$c")")" \
           $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
    if [[ -n $d && -x $d/initdb && -x $d/pg_ctl && -x $d/pg_isready && -x $d/psql ]]; then
      PG_BINDIR=$d
      return 0
    fi
  done
  return 1
}

# Guarantees: PostgreSQL server binaries are installed (Debian's package, via apt).
pg_install() {
  if ((EUID != 0)) || ! command -v apt-get >/dev/null 2>&1; then
    die "PostgreSQL binaries (initdb) not found; install PostgreSQL or set MILEPOST_PG_BINDIR"
  fi
  log "PostgreSQL not found; installing it with apt-get (log: $CACHE_DIR/apt-postgresql.log) ..."
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
         DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql; } \
       >"$CACHE_DIR/apt-postgresql.log" 2>&1 9>&-; then
    show_tail "$CACHE_DIR/apt-postgresql.log"
    die "apt-get install postgresql failed; see $CACHE_DIR/apt-postgresql.log"
  fi
}

# Guarantees: PG_HOME is a directory the cluster owner can write. Normally that is
# .cache/postgres itself; if the postgres user cannot reach into the checkout (e.g. it
# sits under /root, mode 700), the cluster lives in /var/tmp and .cache/postgres
# becomes a symlink to it.
pg_prepare_dir() {
  if ((EUID == 0)) && ! id -u "$PG_USER" >/dev/null 2>&1; then
    log "creating OS user $PG_USER"
    useradd --system --user-group --no-create-home --home-dir /var/lib/postgresql "$PG_USER"
  fi
  if [[ ! -e $PG_LINK ]]; then
    [[ -L $PG_LINK ]] && rm -f "$PG_LINK"   # dangling symlink (e.g. /var/tmp was wiped)
    mkdir -p "$PG_LINK"
    if ((EUID == 0)); then
      chown "$PG_USER:" "$PG_LINK"
      chmod 700 "$PG_LINK"
      if ! as_pg test -w "$PG_LINK/."; then
        local alt
        alt="/var/tmp/milepost-pg-$(printf '%s' "${MILEPOST_SERVICES_DIR:-$REPO_ROOT}" | sha256sum | cut -c1-12)"
        log "user $PG_USER cannot reach $PG_LINK; keeping the cluster in $alt"
        rmdir "$PG_LINK"
        mkdir -p "$alt"
        chown "$PG_USER:" "$alt"
        chmod 700 "$alt"
        ln -s "$alt" "$PG_LINK"
      fi
    fi
  fi
  PG_HOME=$(readlink -f -- "$PG_LINK")
  if ((EUID == 0)); then chown "$PG_USER:" "$PG_HOME"; fi
}

pg_running() {
  [[ -n $PG_HOME && -f $PG_HOME/data/PG_VERSION ]] || return 1
  as_pg "$PG_BINDIR/pg_ctl" -D "$PG_HOME/data" status >/dev/null 2>&1
}

# Guarantees: a complete cluster exists in $PG_HOME/data (trust auth, UTF8, C locale).
# initdb runs into data.partial first, so an interrupted run never leaves a half-made cluster.
pg_init() {
  [[ -f $PG_HOME/data/PG_VERSION ]] && return 0
  log "initialising PostgreSQL cluster in $PG_HOME/data ..."
  rm -rf "$PG_HOME/data.partial"
  if ! as_pg "$PG_BINDIR/initdb" -D "$PG_HOME/data.partial" --username="$PG_USER" \
        --auth=trust --encoding=UTF8 --no-locale >"$CACHE_DIR/initdb.log" 2>&1; then
    show_tail "$CACHE_DIR/initdb.log"
    die "initdb failed; see $CACHE_DIR/initdb.log"
  fi
  mv "$PG_HOME/data.partial" "$PG_HOME/data"
}

# Guarantees on success: PostgreSQL answers on 127.0.0.1:$PG_PORT and database
# $PG_DB exists. Reuses a running server; never starts a second.
pg_up() {
  pg_find_bindir || { pg_install; pg_find_bindir || die "PostgreSQL was installed but initdb is still not found"; }
  pg_prepare_dir
  pg_init
  if pg_running; then
    log "reusing PostgreSQL ($PG_HOME/data)"
  else
    if port_open 127.0.0.1 "$PG_PORT"; then
      die "port 127.0.0.1:$PG_PORT is taken by a process this script did not start; stop it, or set MILEPOST_TEST_DATABASE_URL"
    fi
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT (log: $PG_HOME/postgres.log) ..."
    if ! as_pg "$PG_BINDIR/pg_ctl" -D "$PG_HOME/data" -l "$PG_HOME/postgres.log" -w -t "$TIMEOUT" \
          -o "-p $PG_PORT -k $PG_SOCKET_DIR -c listen_addresses=127.0.0.1" start >/dev/null 9>&-; then
      show_tail "$PG_HOME/postgres.log"
      die "PostgreSQL did not start; see $PG_HOME/postgres.log"
    fi
  fi

  local deadline=$((SECONDS + TIMEOUT))
  until "$PG_BINDIR/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres -t 2; do
    if ((SECONDS >= deadline)); then
      show_tail "$PG_HOME/postgres.log"
      die "PostgreSQL not ready on 127.0.0.1:$PG_PORT after ${TIMEOUT}s; see $PG_HOME/postgres.log"
    fi
    sleep 1
  done

  local psql=("$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER")
  if [[ -z $("${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'") ]]; then
    log "creating database $PG_DB"
    "${psql[@]}" -d postgres -c "CREATE DATABASE $PG_DB" >/dev/null
  fi
  log "PostgreSQL ready on 127.0.0.1:$PG_PORT (database $PG_DB)"
}

# Guarantees: no server runs on our data dir afterwards.
pg_down() {
  if [[ ! -e $PG_LINK ]] || ! pg_find_bindir; then
    log "PostgreSQL: not running"
    return 0
  fi
  PG_HOME=$(readlink -f -- "$PG_LINK")
  if ! pg_running; then
    log "PostgreSQL: not running"
    return 0
  fi
  log "stopping PostgreSQL ..."
  as_pg "$PG_BINDIR/pg_ctl" -D "$PG_HOME/data" -m fast -w -t 60 stop >/dev/null ||
    die "pg_ctl stop failed; see $PG_HOME/postgres.log"
  log "PostgreSQL stopped"
}

pg_status() {
  if [[ -e $PG_LINK ]] && pg_find_bindir; then
    PG_HOME=$(readlink -f -- "$PG_LINK")
    if pg_running; then
      local state="not accepting connections"
      "$PG_BINDIR/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres -t 2 && state="accepting connections"
      echo "postgres: running, 127.0.0.1:$PG_PORT ($state), data $PG_HOME/data; log $PG_HOME/postgres.log"
      return 0
    fi
  fi
  echo "postgres: stopped"
}

# ---------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------

# Runs one provisioner in a subshell with `set -e` in force, so any failing step stops
# that service only; its exit status goes to PROVISION_RC. Call it as a plain command,
# never inside `if`/`&&`/`||`: bash would switch `set -e` off in the whole subshell.
PROVISION_RC=0
provision() {
  set +e
  ( set -e; "$@" )
  PROVISION_RC=$?
  set -e
}

cmd_up() {
  local optional=$1 failed=() kafka_value="" pg_value=""
  take_lock
  rm -f "$ENV_FILE"   # never leave a services.env that describes a previous state

  if [[ -n ${KAFKA_BOOTSTRAP_SERVERS:-} ]]; then
    log "KAFKA_BOOTSTRAP_SERVERS is set; not starting a local Kafka"
    kafka_value=$KAFKA_BOOTSTRAP_SERVERS
  else
    provision kafka_up
    if ((PROVISION_RC == 0)); then
      kafka_value=$KAFKA_BOOTSTRAP
    else
      failed+=("Kafka (KAFKA_BOOTSTRAP_SERVERS)")
    fi
  fi

  if [[ -n ${MILEPOST_TEST_DATABASE_URL:-} ]]; then
    log "MILEPOST_TEST_DATABASE_URL is set; not starting a local PostgreSQL"
    pg_value=$MILEPOST_TEST_DATABASE_URL
  else
    provision pg_up
    if ((PROVISION_RC == 0)); then
      pg_value=$PG_URL
    else
      failed+=("PostgreSQL (MILEPOST_TEST_DATABASE_URL)")
    fi
  fi

  # services.env lists exactly the services that are usable now.
  {
    echo "# Written by deploy/local/services.sh up; load with: set -a; . .cache/services.env; set +a"
    if [[ -n $kafka_value ]]; then env_line KAFKA_BOOTSTRAP_SERVERS "$kafka_value"; fi
    if [[ -n $pg_value ]]; then env_line MILEPOST_TEST_DATABASE_URL "$pg_value"; fi
  } >"$ENV_FILE.tmp"
  mv -f "$ENV_FILE.tmp" "$ENV_FILE"

  if ((${#failed[@]} == 0)); then
    log "wrote $ENV_FILE"
    return 0
  fi
  local f
  if [[ $optional == 1 ]] && ! is_ci; then
    for f in "${failed[@]}"; do
      warn "could not provision $f; it is left out of $ENV_FILE, so tests needing it will be skipped"
    done
    return 0
  fi
  for f in "${failed[@]}"; do
    printf 'services: ERROR: could not provision %s\n' "$f" >&2
  done
  is_ci && log "CI=true: every service is required"
  exit 1
}

cmd_down() {
  take_lock
  local rc=0
  rm -f "$ENV_FILE"   # the services it described are going away
  provision kafka_down
  ((PROVISION_RC == 0)) || rc=1
  provision pg_down
  ((PROVISION_RC == 0)) || rc=1
  return "$rc"
}

cmd_status() {
  kafka_status
  pg_status
  if [[ -f $ENV_FILE ]]; then
    echo "env:      $ENV_FILE"
    grep -v '^#' "$ENV_FILE" | sed 's/^/            /'
  else
    echo "env:      (no $ENV_FILE)"
  fi
}

main() {
  local optional=0 cmd=""
  [[ ${MILEPOST_SERVICES_OPTIONAL:-0} == 1 || ${MILEPOST_SERVICES_OPTIONAL:-} == true ]] && optional=1
  while (($#)); do
    case $1 in
      -h|--help|help) usage; exit 0 ;;
      --optional) optional=1 ;;
      up|down|status|kafka-up|kafka-down|pg-up|pg-down)
        [[ -z $cmd ]] || { usage >&2; exit 2; }
        cmd=$1 ;;
      *) printf 'services: unknown argument: %s\n\n' "$1" >&2; usage >&2; exit 2 ;;
    esac
    shift
  done
  case $cmd in
    up) cmd_up "$optional" ;;
    down) cmd_down ;;
    status) cmd_status ;;
    kafka-up|kafka-down|pg-up|pg-down) take_lock; "${cmd/-/_}" ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
