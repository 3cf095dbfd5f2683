#!/usr/bin/env bash
# The real HDFS of the hdfs:// e2e tests (test/e2e/hdfs.test.ts): test/fixtures/hdfs, a small Java launcher of
# Hadoop's MiniDFSCluster (NameNode + DataNode, WebHDFS on), built with Maven against Maven Central's
# org.apache.hadoop:hadoop-client-minicluster. Java 17 and Maven come from Debian (.ci/run installs them).
# The build and its Maven repository go under DFTEST_TOOLS (default ~/.cache/dragonfly-peer-tools):
#   hdfs-minicluster/        the launcher's classes and jars (target/classes, target/lib/*.jar), and a stamp
#   m2/                      the Maven repository (~120 MiB: Hadoop's shaded client and minicluster jars)
# Skipped when the stamp matches the fixture's sources. The first fetch and build (empty Maven repository) took 17 s
# here on 2 cores; the cluster then starts in 5-20 s (JVM start-up and formatting the NameNode).
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS="${DFTEST_TOOLS:-$HOME/.cache/dragonfly-peer-tools}"
FIXTURE=test/fixtures/hdfs
BUILD="$TOOLS/hdfs-minicluster"
stamp="$(cat "$FIXTURE/pom.xml" "$FIXTURE/src/main/java/dftest/Main.java" | sha256sum | cut -d' ' -f1)"

if [ -f "$BUILD/stamp" ] && [ "$(cat "$BUILD/stamp")" = "$stamp" ]; then
  echo "hdfs mini cluster already built in $BUILD"
  exit 0
fi
for tool in java mvn; do
  command -v "$tool" >/dev/null || { echo "install-hdfs: $tool is missing (Debian: openjdk-17-jdk-headless maven)" >&2; exit 1; }
done
echo "building the hdfs mini cluster launcher into $BUILD"
started=$SECONDS
rm -rf "$BUILD"
mkdir -p "$BUILD"
cp -r "$FIXTURE/pom.xml" "$FIXTURE/src" "$BUILD/"
mvn -B -q -Dmaven.repo.local="$TOOLS/m2" -f "$BUILD/pom.xml" package
echo "$stamp" >"$BUILD/stamp"
echo "hdfs mini cluster built in $((SECONDS - started)) s"
