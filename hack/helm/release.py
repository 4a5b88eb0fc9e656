#!/usr/bin/env python3
"""One Helm action on a release, through Helm v4's own Go library (PyPI `helm-sdkpy`, installed by
hack/testinfra/install-deps.sh). Used by tests/e2e/chart.rs to run the chart's lifecycle under real Helm.

  release.py KUBECONFIG NAMESPACE RELEASE install|upgrade CHART_DIR [VALUES_JSON]
  release.py KUBECONFIG NAMESPACE RELEASE uninstall|status|history

Prints the action's result as JSON on stdout; exits 1 with the error on stderr. No rollback: helm-sdkpy
0.1.32's binding of Helm v4's Rollback sets no wait strategy and fails (the test re-applies an earlier
revision's values with an upgrade instead).
"""
import asyncio
import json
import sys

import helm_sdkpy as helm


async def main(argv):
    kubeconfig, namespace, release, action, *rest = argv
    config = helm.Configuration(namespace=namespace, kubeconfig=kubeconfig)
    if action in ("install", "upgrade"):
        chart = rest[0]
        values = json.loads(rest[1]) if len(rest) > 1 else None
        # No kubelet runs the pods here: do not wait for them.
        if action == "install":
            out = await helm.Install(config).run(release, chart, values=values, wait=False, create_namespace=True)
        else:
            out = await helm.Upgrade(config).run(release, chart, values=values, wait=False)
    elif action == "uninstall":
        out = await helm.Uninstall(config).run(release, wait=False)
    elif action == "status":
        out = await helm.Status(config).run(release)
    elif action == "history":
        out = await helm.History(config).run(release)
    else:
        raise SystemExit(f"unknown action {action}")
    json.dump(out, sys.stdout, default=str)


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1:]))
    except helm.HelmError as e:
        print(f"helm: {e}", file=sys.stderr)
        sys.exit(1)
