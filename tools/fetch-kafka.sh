#!/usr/bin/env bash
# Fetch Apache Kafka (the broker, KRaft mode) as jars from Maven Central for the end-to-end
# tests of the Kafka topology (collector-config/router-kafka.yaml, sampler-kafka.yaml):
#
#   org.apache.kafka:kafka_2.13 (the broker) and kafka-tools (topics, consumer groups) with
#   their runtime dependencies and an SLF4J binding
#
# into ${LLMTAP_KAFKA_DIR:-$HOME/.cache/llmtap/kafka}/<version>/libs. The tests run the
# broker as a plain Java process (kafka.Kafka, after kafka.tools.StorageTool format).
# Idempotent: the jars are fetched again only when the version or this script changes.
#
#   tools/fetch-kafka.sh            fetch what is missing or stale
#   tools/fetch-kafka.sh --force    fetch again
#   tools/fetch-kafka.sh --print    print the directory of the jars and exit
#
# Needs Java >= 17 (to run the broker), Maven 3 and access to Maven Central.
set -euo pipefail

KAFKA_VERSION=4.4.0
SCALA_VERSION=2.13
SLF4J_VERSION=2.0.20

ROOT=$(cd "$(dirname "$0")/.." && pwd)
KAFKA_DIR=${LLMTAP_KAFKA_DIR:-$HOME/.cache/llmtap/kafka}
LIBS="$KAFKA_DIR/$KAFKA_VERSION/libs"
STAMP="$KAFKA_DIR/$KAFKA_VERSION/.stamp"

log() { echo "fetch-kafka: $*"; }
die() {
  echo "fetch-kafka: error: $*" >&2
  exit 1
}

FORCE=0
case "${1:-}" in
  --force) FORCE=1 ;;
  --print)
    echo "$LIBS"
    exit 0
    ;;
  "") ;;
  *) die "unknown argument $1 (expected --force or --print)" ;;
esac

pom() {
  cat <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>llmtap.test</groupId>
  <artifactId>kafka-broker-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_$SCALA_VERSION</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-api</artifactId>
      <version>$SLF4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-simple</artifactId>
      <version>$SLF4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
}

main() {
  command -v mvn >/dev/null || die "mvn not found on PATH; install Maven 3 (apt-get install maven)"
  command -v java >/dev/null || die "java not found on PATH; install Java >= 17"
  local key
  key="kafka_$SCALA_VERSION kafka-tools $KAFKA_VERSION slf4j-simple $SLF4J_VERSION $(sha256sum "$0" | cut -c1-16)"
  if [[ $FORCE == 0 && -f $STAMP && "$(cat "$STAMP")" == "$key" ]]; then
    log "Kafka $KAFKA_VERSION up to date in $LIBS"
    return
  fi
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
  pom >"$WORK/pom.xml"
  log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $LIBS"
  rm -rf "$LIBS" && mkdir -p "$LIBS"
  if ! (cd "$WORK" && mvn -B dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$LIBS" >"$WORK/mvn.log" 2>&1); then
    tail -40 "$WORK/mvn.log" >&2
    die "mvn dependency:copy-dependencies failed (output above)"
  fi
  [[ -n $(compgen -G "$LIBS/kafka_$SCALA_VERSION-$KAFKA_VERSION.jar") ]] ||
    die "Maven gave no kafka_$SCALA_VERSION-$KAFKA_VERSION.jar in $LIBS"
  printf '%s' "$key" >"$STAMP"
  log "fetched $(find "$LIBS" -name '*.jar' | wc -l) jars ($(du -sh "$LIBS" | cut -f1)) into $LIBS"
}

cd "$ROOT"
main
