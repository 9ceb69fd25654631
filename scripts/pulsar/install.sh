#!/usr/bin/env bash
# Installs what the Pulsar client tests need: Java 17 + Maven + openssl (Debian,
# only if missing), the Apache Pulsar 4.0.x broker jars into ~/.m2 (Maven
# Central only, see settings.xml) and the Python pulsar-client for interop.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if ! command -v java >/dev/null || ! command -v mvn >/dev/null || ! command -v openssl >/dev/null; then
  apt-get update -q
  apt-get install -y -q openjdk-17-jdk-headless maven openssl
fi

version="$(sed -n 's:.*<pulsar.version>\(.*\)</pulsar.version>.*:\1:p' "$here/pom.xml")"
mkdir -p "$HOME/.m2/kakehi"
# Resolves (and downloads once) the broker's runtime classpath; broker.mjs reads this file.
mvn -q -B -s "$here/settings.xml" -f "$here/pom.xml" dependency:build-classpath \
  -Dmdep.outputFile="$HOME/.m2/kakehi/pulsar-$version.classpath"

python3 -m pip install -q pulsar-client==3.13.0
