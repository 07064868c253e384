#!/usr/bin/env python3
"""check.py - validate the manifests without a cluster: YAML syntax, and the fields an
Indexed Job of scansim needs (checked against the batch/v1 Job schema by hand: kinds,
apiVersions, completionMode Indexed, completions == parallelism == SCANSIM_SHARDS,
restartPolicy Never, the ConfigMap and PVC it names). Exit 0 or 1 with the reasons."""
import os
import sys

import yaml

here = os.path.dirname(os.path.abspath(__file__))
docs = {}
for name in ("configmap.yaml", "job.yaml", "results-pvc.yaml"):
    with open(os.path.join(here, name)) as f:
        for d in yaml.safe_load_all(f):
            docs[d["kind"]] = d
bad = []
def want(cond, why):
    if not cond:
        bad.append(why)
cm, job, pvc = docs.get("ConfigMap"), docs.get("Job"), docs.get("PersistentVolumeClaim")
want(cm and cm["apiVersion"] == "v1", "a v1 ConfigMap")
want(pvc and pvc["apiVersion"] == "v1", "a v1 PersistentVolumeClaim")
want(job and job["apiVersion"] == "batch/v1", "a batch/v1 Job")
if job and cm and pvc:
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    want(spec.get("completionMode") == "Indexed", "completionMode: Indexed")
    want(spec.get("completions") == spec.get("parallelism") == int(cm["data"]["SCANSIM_SHARDS"]),
         "completions == parallelism == SCANSIM_SHARDS")
    want(pod.get("restartPolicy") == "Never", "restartPolicy: Never")
    c = pod["containers"][0]
    want(c["envFrom"][0]["configMapRef"]["name"] == cm["metadata"]["name"], "envFrom the ConfigMap")
    want(pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"],
         "the results PVC")
    want("--shards" in " ".join(c["args"]) and "JOB_COMPLETION_INDEX" in " ".join(c["args"]),
         "scansim run --shards with a --json per JOB_COMPLETION_INDEX")
    for k in ("SCANSIM_BROKER", "SCANSIM_DEVICES", "SCANSIM_ITEMS"):
        want(k in cm["data"], "ConfigMap key " + k)
for b in bad:
    print("deploy/kubernetes: missing or wrong: " + b)
print("deploy/kubernetes: " + ("OK" if not bad else "%d problems" % len(bad)))
sys.exit(1 if bad else 0)
