// Checks deploy/kubernetes without a cluster:
//   - every manifest the kustomization lists is valid against the Kubernetes
//     API's own OpenAPI schemas (kubernetes-models' validate(); the
//     ServiceMonitor against the Prometheus Operator's CRD schema), and so
//     is the Secret its secretGenerator makes;
//   - every file in the directory is listed, or is the scrape job;
//   - the flags the StatefulSet passes are ones `zpaged --help` knows, and
//     its ports, probes, preStop, grace period and memory agree with them;
//   - the Service, the ServiceMonitor, the NetworkPolicy and the plain
//     scrape job (prometheus-scrape.yaml) name the ports the pods open.
//
// Usage: node validate.mjs DEPLOY_DIR ZPAGED_HELP_FILE
// Prints "ok: ..." for each check and exits 1 if any failed.

import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { StatefulSet } from "kubernetes-models/apps/v1";
import { Namespace, Secret, Service } from "kubernetes-models/v1";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const [dir, helpFile] = process.argv.slice(2);
let failures = 0;
function check(ok, what) {
  console.log(`${ok ? "ok" : "FAILED"}: ${what}`);
  if (!ok) failures++;
}

const kinds = new Map(
  [StatefulSet, Namespace, Secret, Service, NetworkPolicy, PodDisruptionBudget,
   ServiceMonitor].map((model) => [`${model.apiVersion}/${model.kind}`, model]));

function validate(doc, where) {
  const model = kinds.get(`${doc.apiVersion}/${doc.kind}`);
  if (!model) {
    check(false, `${where}: no schema for ${doc.apiVersion} ${doc.kind}`);
    return;
  }
  try {
    new model(doc).validate();
    check(true, `${where}: ${doc.kind} ${doc.metadata.name} matches the ${doc.apiVersion} schema`);
  } catch (error) {
    check(false, `${where}: ${doc.kind}: ${error.message}`);
  }
}

const kustomization = YAML.parse(readFileSync(path.join(dir, "kustomization.yaml"), "utf8"));
const objects = [];
for (const file of kustomization.resources) {
  for (const doc of YAML.parseAllDocuments(readFileSync(path.join(dir, file), "utf8"))) {
    const object = doc.toJS();
    if (object === null) continue;
    validate(object, file);
    objects.push(object);
  }
}
const unlisted = readdirSync(dir).filter(
  (f) => f.endsWith(".yaml") && f !== "kustomization.yaml" &&
    f !== "prometheus-scrape.yaml" && !kustomization.resources.includes(f));
check(unlisted.length === 0, `every manifest is in the kustomization (${unlisted.join(", ") || "none left out"})`);

// The Secret the generator makes, as kubectl would.
const generated = kustomization.secretGenerator ?? [];
check(generated.length === 1 && generated[0].files.includes("tokens"),
      "the token file becomes a Secret (secretGenerator, from 'tokens')");
validate({ apiVersion: "v1", kind: "Secret", metadata: { name: generated[0].name },
           data: { tokens: Buffer.from("TOKEN vm-1\n").toString("base64") } },
         "secretGenerator");

const find = (kind) => objects.find((o) => o.kind === kind);
const set = find("StatefulSet");
const service = find("Service");
const pod = set.spec.template.spec;
const container = pod.containers[0];

// Flags: every one the manifest passes (args, and ZPAGED_<FLAG> environment)
// is one zpaged knows.
const help = readFileSync(helpFile, "utf8");
const known = new Set([...help.matchAll(/^\s+--([a-z_]+) /gm)].map((m) => m[1]));
check(known.size > 20, `zpaged --help lists its flags (${known.size})`);
const flags = new Map();
for (const arg of container.args) {
  const [, name, value] = arg.match(/^--([a-z_]+)(?:=(.*))?$/) ?? [];
  check(name !== undefined && known.has(name), `zpaged knows ${arg}`);
  if (name) flags.set(name, value ?? "true");
}
for (const env of container.env ?? []) {
  const flag = env.name.replace(/^ZPAGED_/, "").toLowerCase();
  check(env.name.startsWith("ZPAGED_") && known.has(flag), `zpaged knows ${env.name} (--${flag})`);
}
check(set.spec.podManagementPolicy === "Parallel", "the members start together (Parallel)");
check(container.env?.some((e) => e.name === "ZPAGED_NODE_NAME" &&
                           e.valueFrom?.fieldRef?.fieldPath === "metadata.name"),
      "each member's --node_name is its pod name (zpaged-N)");
check(flags.has("auth_tokens_file") && !flags.has("allow_unauthenticated_remote"),
      "the servers need a token (--auth_tokens_file), never run open");
const tokensMount = container.volumeMounts.find(
  (m) => flags.get("auth_tokens_file")?.startsWith(m.mountPath + "/"));
const tokensVolume = pod.volumes.find((v) => v.name === tokensMount?.name);
check(tokensVolume?.secret?.secretName === generated[0].name,
      `--auth_tokens_file is read from the Secret ${generated[0].name}`);

// Ports: what zpaged listens on is what the pod, its probes, the Service and
// the ServiceMonitor name.
const portOf = (address) => Number(address.split(":").pop());
const containerPort = (name) => container.ports.find((p) => p.name === name)?.containerPort;
check(containerPort("grpc") === portOf(flags.get("listen")), `the grpc port is --listen's (${flags.get("listen")})`);
check(containerPort("metrics") === portOf(flags.get("metrics_listen")),
      `the metrics port is --metrics_listen's (${flags.get("metrics_listen")})`);
for (const probe of ["readinessProbe", "livenessProbe"]) {
  check(container[probe]?.grpc?.port === portOf(flags.get("listen")),
        `${probe} asks zpaged's gRPC health service`);
}
check(service.spec.clusterIP === "None", "the Service is headless: its name resolves to every member");
check(set.spec.serviceName === service.metadata.name, "the StatefulSet's serviceName is the Service");
for (const port of service.spec.ports) {
  check(container.ports.some((p) => p.name === port.targetPort), `Service port ${port.name} reaches the pod`);
}
const monitor = find("ServiceMonitor");
check(monitor.spec.endpoints.every((e) => service.spec.ports.some((p) => p.name === e.port)),
      "the ServiceMonitor scrapes a port the Service has");
const [job] = YAML.parse(readFileSync(path.join(dir, "prometheus-scrape.yaml"), "utf8"));
const relabel = (label) => job.relabel_configs.find(
  (r) => r.action === "keep" && r.source_labels.includes(label))?.regex;
check(job.kubernetes_sd_configs?.[0]?.role === "pod" &&
      job.kubernetes_sd_configs[0].namespaces?.names?.includes(kustomization.namespace) &&
      relabel("__meta_kubernetes_pod_label_app_kubernetes_io_name") ===
        set.spec.selector.matchLabels["app.kubernetes.io/name"] &&
      container.ports.some((p) => p.name === relabel("__meta_kubernetes_pod_container_port_name")),
      "the plain scrape job finds the pods' metrics port in the namespace");
const policy = find("NetworkPolicy");
check(policy.spec.ingress.some((rule) => rule.ports.some((p) => p.port === portOf(flags.get("listen"))) &&
                                          rule.from.every((f) => f.namespaceSelector && !f.podSelector)),
      "the NetworkPolicy admits gRPC from the bridge hosts' namespace only");
check(find("PodDisruptionBudget").spec.maxUnavailable === 1, "one member down at a time (PodDisruptionBudget)");

// Shutdown: the preStop sends SIGTERM and waits, zpaged drains on it, and the
// grace period covers the drain and the calls' grace.
const seconds = (d) => Number(String(d ?? "").replace(/s$/, ""));
const preStop = container.lifecycle?.preStop?.exec?.command?.join(" ") ?? "";
check(preStop.includes("kill -TERM 1") && flags.get("drain_on_shutdown") === "true",
      "preStop sends SIGTERM, on which zpaged drains (--drain_on_shutdown), and waits for it");
check(pod.terminationGracePeriodSeconds >= seconds(flags.get("drain_deadline")) +
                                          seconds(flags.get("shutdown_grace")),
      `terminationGracePeriodSeconds (${pod.terminationGracePeriodSeconds}) covers the drain and the grace`);

// Memory: request = limit, at least what zpaged may hold.
const bytes = (size) => {
  const m = String(size).match(/^(\d+)(Ki|Mi|Gi|Ti|K|M|G|T)?$/);
  const unit = { K: 1, Ki: 1, M: 2, Mi: 2, G: 3, Gi: 3, T: 4, Ti: 4 }[m[2]] ?? 0;
  return Number(m[1]) * 1024 ** unit;
};
const { requests, limits } = container.resources;
const bound = bytes(flags.get("max_memory_bytes")) + bytes(flags.get("grpc_memory_bytes")) +
              bytes(flags.get("stream_buffer_bytes")) + bytes("32Mi");
check(requests.memory === limits.memory, "memory request = limit");
check(bytes(limits.memory) >= bound,
      `the memory limit (${limits.memory}) holds zpaged's bound (${(bound / 2 ** 20).toFixed(0)} Mi)`);
check(container.securityContext?.readOnlyRootFilesystem === true && pod.securityContext?.runAsNonRoot === true,
      "non-root, read-only root filesystem");

console.log(failures === 0 ? "all Kubernetes checks passed" : `${failures} Kubernetes checks FAILED`);
process.exit(failures === 0 ? 0 : 1);
