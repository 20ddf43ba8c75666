// Validates Kubernetes manifests (multi-document YAML from files or stdin) against the
// Kubernetes OpenAPI schemas: types, enums and required fields through kubernetes-models, and
// unknown fields — which the API server drops silently, so a typo like `hostPid` would quietly
// unprivilege the agent — through @kubernetes/client-node's per-model property lists.
// Prints one line per problem ("<source> <Kind>/<name>: <path>: <problem>"); exit 1 if any.
// `--self-test` checks that known-bad manifests are rejected.
import fs from "node:fs";
import YAML from "yaml";
import * as k8s from "@kubernetes/client-node";

const modelsFor = async (apiVersion) => {
  const path = apiVersion.includes("/") ? apiVersion : apiVersion;  // "v1", "apps/v1", ...
  return import(`kubernetes-models/${path}`);
};

// "Array<V1Container>" -> {array: true, type: "V1Container"}
const parseType = (t) => {
  const m = /^Array<(.+)>$/.exec(t);
  return m ? { array: true, type: m[1] } : { array: false, type: t };
};

function unknownFields(value, typeName, path, out) {
  const model = k8s[typeName];
  if (!model || !model.attributeTypeMap || value === null || typeof value !== "object") return;
  const attrs = new Map(model.attributeTypeMap.map((a) => [a.baseName, a.type]));
  for (const [key, v] of Object.entries(value)) {
    if (!attrs.has(key)) {
      out.push(`${path}/${key}: unknown field (not in ${typeName})`);
      continue;
    }
    const { array, type } = parseType(attrs.get(key));
    if (array && Array.isArray(v)) v.forEach((e, i) => unknownFields(e, type, `${path}/${key}/${i}`, out));
    else unknownFields(v, type, `${path}/${key}`, out);
  }
}

export async function validateDoc(doc) {
  const problems = [];
  if (!doc || typeof doc !== "object") return ["document is not an object"];
  const { apiVersion, kind } = doc;
  if (!apiVersion || !kind) return ["apiVersion and kind are required"];
  let models;
  try {
    models = await modelsFor(apiVersion);
  } catch {
    return [`unknown apiVersion ${apiVersion}`];
  }
  const Model = models[kind];
  if (!Model) return [`unknown kind ${kind} in ${apiVersion}`];
  try {
    new Model(doc).validate();
  } catch (e) {
    problems.push(...String(e.message).split(", ").map((s) => s.replace(/^data/, "")));
  }
  const version = apiVersion.split("/").pop();
  const typeName = version.charAt(0).toUpperCase() + version.slice(1) + kind;
  unknownFields(doc, typeName, "", problems);
  return problems;
}

async function validateText(text, source) {
  const lines = [];
  for (const d of YAML.parseAllDocuments(text)) {
    if (d.errors.length) {
      lines.push(`${source}: YAML: ${d.errors[0].message}`);
      continue;
    }
    const doc = d.toJS();
    if (doc === null) continue;
    const name = `${doc.kind ?? "?"}/${doc.metadata?.name ?? "?"}`;
    for (const p of await validateDoc(doc)) lines.push(`${source} ${name}: ${p}`);
  }
  return lines;
}

async function selfTest() {
  const good = {
    apiVersion: "apps/v1", kind: "DaemonSet", metadata: { name: "x" },
    spec: { selector: { matchLabels: { a: "b" } },
            template: { metadata: { labels: { a: "b" } },
                        spec: { hostPID: true, containers: [{ name: "c", image: "i" }] } } },
  };
  const bad = [
    (d) => { d.spec.template.spec.hostPid = true; },                 // unknown field
    (d) => { d.spec.template.spec.hostPID = "yes"; },                // wrong type
    (d) => { delete d.spec.selector; },                               // missing required
    (d) => { d.spec.template.spec.containers[0].imagePullPolicy = 7; },
    (d) => { d.spec.template.spec.containers[0].securityContext = { privilegd: true }; },
  ];
  let failed = 0;
  if ((await validateDoc(structuredClone(good))).length) { console.log("self-test: good doc rejected"); failed++; }
  for (const [i, mutate] of bad.entries()) {
    const d = structuredClone(good);
    mutate(d);
    if (!(await validateDoc(d)).length) { console.log(`self-test: bad doc ${i} accepted`); failed++; }
  }
  console.log(failed ? "self-test FAILED" : "self-test passed");
  return failed ? 1 : 0;
}

const args = process.argv.slice(2);
if (args[0] === "--self-test") process.exit(await selfTest());
const inputs = args.length ? args.map((f) => [fs.readFileSync(f, "utf8"), f]) : [[fs.readFileSync(0, "utf8"), "stdin"]];
let problems = [];
let objects = 0;
for (const [text, source] of inputs) {
  objects += YAML.parseAllDocuments(text).filter((d) => d.toJS() !== null).length;
  problems = problems.concat(await validateText(text, source));
}
for (const p of problems) console.log(p);
console.log(problems.length ? `${problems.length} problems in ${objects} objects` : `${objects} objects valid`);
process.exit(problems.length ? 1 : 0);
