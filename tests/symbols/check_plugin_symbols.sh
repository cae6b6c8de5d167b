#!/usr/bin/env bash
# Upstream Mosquitto 2.0 builds export only the plugin API's functions (the list beside this
# script, from src/linker.syms of 2.0.11 to 2.0.20); Debian's exports everything. A plugin that
# calls anything else loads on Debian and fails on upstream builds, so this test refuses it.
set -euo pipefail
plugin=$1
allowed=$(dirname "$0")/plugin_api_2.0.txt

used=$(nm -D --undefined-only "$plugin" | awk '{print $2}' | grep '^mosquitto' | sort -u)
bad=$(comm -23 <(echo "$used") <(sort -u "$allowed"))
if [ -n "$bad" ]; then
    echo "the plugin uses functions outside Mosquitto 2.0's plugin API: $bad"
    exit 1
fi
exported=$(nm -D --defined-only "$plugin" | awk '$2 == "T" {print $3}' | sort | tr '\n' ' ')
if [ "$exported" != "mosquitto_plugin_cleanup mosquitto_plugin_init mosquitto_plugin_version " ]
then
    echo "the plugin exports more than its three entry points: $exported"
    exit 1
fi
echo "plugin uses: $(echo $used)"
