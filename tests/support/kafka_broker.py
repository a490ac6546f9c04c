"""Apache Kafka for end-to-end tests: one KRaft node (broker and controller in one JVM) as a
plain Java process on free loopback ports, from the jars of ``tools/fetch-kafka.sh``.

``require_kafka()`` runs the fetch script (idempotent: a no-op once the jars are cached under
``$LLMTAP_KAFKA_DIR``, default ``~/.cache/llmtap/kafka``) and skips the test when Java is
missing or the jars cannot be fetched, unless ``LLMTAP_REQUIRE_BINARIES=1``: then it fails.

    broker = start_kafka(procs, tmp_path / "kafka")
    broker.create_topic("spans", partitions=4)
    ... KAFKA_BROKERS=f"[{broker.bootstrap}]" ...
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from support.binaries import LOOPBACK, REPO, Proc, Processes, free_ports, port_open, unavailable

FETCH_SCRIPT = REPO / "tools" / "fetch-kafka.sh"
FETCH_COMMAND = str(FETCH_SCRIPT.relative_to(REPO))
# small heap, quick start: a test broker holds a few kilobytes
JVM_OPTIONS = (
    "-Xms128m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
    "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
    "-Dorg.slf4j.simpleLogger.log.kafka.server.KafkaRaftServer=info",
)
STARTED = "Kafka Server started"


def require_kafka() -> tuple[str, Path]:
    """(java, jar directory): fetches the jars when they are missing or stale."""
    java = shutil.which("java")
    if java is None:
        unavailable(f"java is not installed: Kafka needs Java >= 17 ({FETCH_COMMAND})")
    try:
        done = subprocess.run(
            [str(FETCH_SCRIPT)], capture_output=True, text=True, timeout=600, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        unavailable(f"the Kafka jars could not be fetched: {FETCH_COMMAND}: {exc}")
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()[-3:]
        unavailable(f"the Kafka jars could not be fetched: {FETCH_COMMAND}: {' | '.join(said)}")
    printed = subprocess.run(
        [str(FETCH_SCRIPT), "--print"], capture_output=True, text=True, timeout=30, check=True
    )
    return java, Path(printed.stdout.strip())


def _cluster_id() -> str:
    """A Kafka cluster id: a UUID in URL-safe base64 without padding, not starting with "-"
    (which the command line would take for an option; Kafka's own ids avoid it too)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


def _server_properties(data: Path, port: int, controller: int, partitions: int) -> str:
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{LOOPBACK}:{controller}",
        "listeners": f"PLAINTEXT://{LOOPBACK}:{port},CONTROLLER://{LOOPBACK}:{controller}",
        "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data / "log"),
        "num.partitions": str(partitions),
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


@dataclass
class KafkaBroker:
    proc: Proc
    java: str
    classpath: str
    port: int

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def tool(self, main_class: str, *args: str, timeout: float = 60) -> str:
        """Run a Kafka command-line tool (``org.apache.kafka.tools.*``) against this broker."""
        command = [self.java, *JVM_OPTIONS, "-cp", self.classpath, main_class]
        command += ["--bootstrap-server", self.bootstrap, *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"{main_class} {args}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def create_topic(self, topic: str, partitions: int) -> None:
        self.tool(
            "org.apache.kafka.tools.TopicCommand",
            "--create",
            "--topic",
            topic,
            "--partitions",
            str(partitions),
        )


def start_kafka(
    procs: Processes, data: Path, name: str = "kafka", partitions: int = 4
) -> KafkaBroker:
    """Format ``data`` as a new single-node KRaft cluster and start it; waits until the
    broker accepts connections (``partitions``: default partitions of a new topic)."""
    java, libs = require_kafka()
    classpath = f"{libs}/*"
    port, controller = free_ports(2)
    data.mkdir(parents=True, exist_ok=True)
    properties = data / "server.properties"
    properties.write_text(_server_properties(data, port, controller, partitions))
    storage = [java, *JVM_OPTIONS, "-cp", classpath, "kafka.tools.StorageTool", "format"]
    storage += ["--config", str(properties), "--cluster-id", _cluster_id()]
    formatted = subprocess.run(storage, capture_output=True, text=True, timeout=120)
    assert formatted.returncode == 0, f"kafka-storage format:\n{formatted.stdout}{formatted.stderr}"
    proc = procs.start(
        name,
        [java, *JVM_OPTIONS, "-cp", classpath, "kafka.Kafka", properties],
        ports={"kafka": port},
    )
    proc.wait_healthy(lambda: STARTED in proc.log() and port_open(port), timeout=120)
    return KafkaBroker(proc, java, classpath, port)
