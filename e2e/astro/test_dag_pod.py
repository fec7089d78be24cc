"""Unit tests of dag_pod.py (needs PyYAML: run with the venv's python):
$(e2e/astro/venv.sh) -m unittest e2e/astro/test_dag_pod.py"""

import hashlib
import os
import sys
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dag_pod  # noqa: E402

DAG_FILE = os.path.join(HERE, "..", "..", "manifests", "examples", "21-astronomy-dag.yaml")


def load_dag():
    with open(DAG_FILE) as f:
        return next(d for d in yaml.safe_load_all(f) if d and d.get("kind") == "Dag")


class RenderTest(unittest.TestCase):
    def setUp(self):
        self.dag = load_dag()
        self.pod = dag_pod.render(self.dag, "detect", "p", "ws", {"file": "/data/input/a.fits"}, "r1")
        self.c = self.pod["spec"]["containers"][0]

    def test_script_is_passed_byte_for_byte(self):
        script = next(s for s in self.dag["spec"]["steps"] if s["name"] == "detect")["script"]
        self.assertEqual(self.c["command"], ["sh", "-c", script])

    def test_defaults_and_workspace(self):
        d = self.dag["spec"]["defaults"]
        self.assertEqual(self.c["image"], d["image"])
        self.assertEqual(self.c["securityContext"], d["securityContext"])
        self.assertEqual(self.pod["spec"]["securityContext"], d["podSecurityContext"])
        self.assertIn({"name": "workspace", "mountPath": "/workspace"}, self.c["volumeMounts"])
        self.assertIn({"name": "workspace", "persistentVolumeClaim": {"claimName": "ws"}}, self.pod["spec"]["volumes"])

    def test_env_has_params_and_contract_hash(self):
        env = {e["name"]: e["value"] for e in self.c["env"]}
        self.assertEqual(env["file"], "/data/input/a.fits")
        want = hashlib.sha256(b'{"file":"/data/input/a.fits"}').hexdigest()
        self.assertEqual(env["KUBEDAG_PARAM_HASH"], want)
        self.assertEqual(env["KUBEDAG_STEP"], "detect")
        self.assertNotIn("KUBEDAG_OUTPUTS", env)  # detect declares no outputs

    def test_outputs_file_for_steps_with_outputs(self):
        pod = dag_pod.render(self.dag, "catalogue", "p", "ws", {"file": "/x.fits"}, "r1")
        env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
        self.assertEqual(env["KUBEDAG_OUTPUTS"], "/workspace/.outputs-catalogue")

    def test_errors_name_step_and_param(self):
        with self.assertRaisesRegex(dag_pod.DagError, "step 'nope' not in Dag astro-pipeline"):
            dag_pod.render(self.dag, "nope", "p", "ws", {"file": "x"}, "r")
        with self.assertRaisesRegex(dag_pod.DagError, "required param.*file"):
            dag_pod.render(self.dag, "header", "p", "ws", {}, "r")
        with self.assertRaisesRegex(dag_pod.DagError, "param.*colour not declared"):
            dag_pod.render(self.dag, "header", "p", "ws", {"file": "x", "colour": "red"}, "r")


if __name__ == "__main__":
    unittest.main()
