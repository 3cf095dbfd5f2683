#!/usr/bin/env bash
# The object stores the e2e tests run against (test/e2e/object-storage-*.test.ts), installed by package name into
# one tools directory the tests look in (DFTEST_TOOLS, default ~/.cache/dragonfly-peer-tools):
#   MinIO (s3://)            Go module github.com/minio/minio at the pseudo-version `@latest` resolved to on
#                            2026-12-06 (MinIO tags no semver releases), built with `go install`: ~11 min on 2 cores
#   fake-gcs-server (gs://)  Go module github.com/fsouza/fake-gcs-server, built with `go install`
#   Azurite (abs://)         npm package azurite, in its own prefix: 3.35.0, the last release that runs on Node 20
#                            (3.36+ require Node 22), kept out of the project's node_modules (it brings ~370
#                            packages the project does not use)
# Each is skipped when already there. s3rver (s3:// in `npm test`) is an npm devDependency of the project.
set -euo pipefail

TOOLS="${DFTEST_TOOLS:-$HOME/.cache/dragonfly-peer-tools}"
FAKE_GCS_VERSION=v1.56.1
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
AZURITE_VERSION=3.35.0
mkdir -p "$TOOLS/bin"

if [ ! -x "$TOOLS/bin/fake-gcs-server" ]; then
  echo "installing fake-gcs-server $FAKE_GCS_VERSION into $TOOLS/bin"
  GOBIN="$TOOLS/bin" go install "github.com/fsouza/fake-gcs-server@$FAKE_GCS_VERSION"
fi

if [ ! -x "$TOOLS/bin/minio" ]; then
  echo "installing minio $MINIO_VERSION into $TOOLS/bin (a long build)"
  GOBIN="$TOOLS/bin" go install "github.com/minio/minio@$MINIO_VERSION"
fi

if [ ! -x "$TOOLS/azurite/node_modules/.bin/azurite-blob" ]; then
  echo "installing azurite $AZURITE_VERSION into $TOOLS/azurite"
  npm install --no-audit --no-fund --prefix "$TOOLS/azurite" "azurite@$AZURITE_VERSION"
fi
echo "object stores for the e2e tests are in $TOOLS"
