"""Render one step of a kubedag Dag as a plain Pod, as the contract says the
operator runs it, to prove a Dag's commands before (and without) kubedag.

Usage: python dag_pod.py DAG.yaml STEP --name POD --workspace-claim PVC
                         [--param NAME=VALUE ...] [--run RUN]
Prints the Pod as JSON on stdout. Applied from the Dag: defaults (image,
imagePullPolicy, workingDir, resources, env, securityContext,
podSecurityContext, volumes, volumeMounts) overridden by the step's own
fields; command/args, or script as ["sh", "-c", SCRIPT] byte for byte; the
workspace claim mounted at spec.workspace.mountPath; env: one variable per
resolved param (Dag defaults overridden by --param) plus KUBEDAG_DAG,
KUBEDAG_RUN, KUBEDAG_STEP, KUBEDAG_REQUEST_ID, KUBEDAG_PARAM_HASH (SHA-256 of
the canonical params JSON), and KUBEDAG_OUTPUTS=WORKSPACE/.outputs-STEP when
the step declares outputs. restartPolicy Never.
Errors (exit 2) name the step or param: unknown step, undeclared or missing
param.
"""

import argparse
import hashlib
import json
import sys

import yaml

POD_FIELDS = ("imagePullPolicy", "workingDir", "resources", "securityContext", "envFrom")


class DagError(Exception):
    """The Dag or the arguments do not fit together."""


def resolve_params(dag, given):
    """Dag defaults overridden by given; every name declared, none missing."""
    declared = {p["name"]: p.get("default") for p in dag["spec"].get("params", [])}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise DagError(f"param(s) {', '.join(unknown)} not declared by Dag {dag['metadata']['name']}")
    resolved = {k: given.get(k, v) for k, v in declared.items()}
    missing = sorted(k for k, v in resolved.items() if v is None)
    if missing:
        raise DagError(f"required param(s) {', '.join(missing)} not given")
    return resolved


def render(dag, step_name, pod_name, claim, params, run):
    """The Pod (a dict) for step step_name of dag."""
    spec = dag["spec"]
    steps = {s["name"]: s for s in spec["steps"]}
    if step_name not in steps:
        raise DagError(f"step {step_name!r} not in Dag {dag['metadata']['name']} (steps: {', '.join(steps)})")
    step, defaults = steps[step_name], spec.get("defaults", {})
    merged = {**defaults, **step}
    resolved = resolve_params(dag, params)
    canonical = json.dumps(resolved, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    env = [{"name": k, "value": v} for k, v in sorted(resolved.items())]
    env += [
        {"name": "KUBEDAG_DAG", "value": dag["metadata"]["name"]},
        {"name": "KUBEDAG_RUN", "value": run},
        {"name": "KUBEDAG_STEP", "value": step_name},
        {"name": "KUBEDAG_REQUEST_ID", "value": run},
        {"name": "KUBEDAG_PARAM_HASH", "value": hashlib.sha256(canonical.encode()).hexdigest()},
    ]
    if step.get("outputs"):
        env.append({"name": "KUBEDAG_OUTPUTS", "value": f"{spec['workspace']['mountPath']}/.outputs-{step_name}"})
    container = {"name": "main", "image": merged["image"], "env": merged.get("env", []) + env}
    if "script" in step:
        container["command"] = ["sh", "-c", step["script"]]
    else:
        for k in ("command", "args"):
            if k in step:
                container[k] = step[k]
    container.update({k: merged[k] for k in POD_FIELDS if k in merged})
    volumes = list(merged.get("volumes", []))
    mounts = list(merged.get("volumeMounts", []))
    if "workspace" in spec:
        volumes.append({"name": "workspace", "persistentVolumeClaim": {"claimName": claim}})
        mounts.append({"name": "workspace", "mountPath": spec["workspace"]["mountPath"]})
    container["volumeMounts"] = mounts
    pod_spec = {"restartPolicy": "Never", "containers": [container], "volumes": volumes}
    if "podSecurityContext" in merged:
        pod_spec["securityContext"] = merged["podSecurityContext"]
    labels = {"kubedag.io/dag": dag["metadata"]["name"], "kubedag.io/run": run, "kubedag.io/step": step_name}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod_name, "labels": labels}, "spec": pod_spec}


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dag")
    p.add_argument("step")
    p.add_argument("--name", required=True)
    p.add_argument("--workspace-claim", required=True)
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--run", default="prove")
    a = p.parse_args(argv)
    try:
        bad = [kv for kv in a.param if "=" not in kv]
        if bad:
            raise DagError(f"--param wants NAME=VALUE, got {bad[0]!r}")
        with open(a.dag) as f:
            dag = next(d for d in yaml.safe_load_all(f) if d and d.get("kind") == "Dag")
        params = dict(kv.split("=", 1) for kv in a.param)
        print(json.dumps(render(dag, a.step, a.name, a.workspace_claim, params, a.run), indent=1))
    except (DagError, OSError, StopIteration, KeyError) as e:
        print(f"dag_pod: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
