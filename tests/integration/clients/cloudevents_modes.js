// Send Tenure events with the CloudEvents JavaScript SDK (npm `cloudevents`) in its HTTP
// modes: structured and binary through its emitter, batched as a body of its structured
// serialisations (the SDK reads batches but has no batch serializer). Prints the answers.
// Usage: node cloudevents_modes.js INGEST_URL TOKEN SOURCE
const { CloudEvent, CONSTANTS, HTTP, Mode, emitterFor, httpTransport } = require("cloudevents");

const [url, token, source] = process.argv.slice(2);
const endpoint = `${url}/v1/events`;
const auth = { headers: { Authorization: `Bearer ${token}` } };
const time = new Date(Date.now() - 60_000).toISOString();

function deviceUsed(id, data = { device_id: `js-${id}`, duration_s: 12.5, feature: "steps" }) {
  return new CloudEvent({ specversion: "1.0", type: "device.used", source, id, time, data });
}

async function main() {
  const structured = emitterFor(httpTransport(endpoint), { mode: Mode.STRUCTURED });
  const binary = emitterFor(httpTransport(endpoint), { mode: Mode.BINARY });
  const batch = [deviceUsed("js-batched-0"), deviceUsed("js-batched-1"),
                 deviceUsed("js-batched-invalid", { duration_s: 1 })];
  const batched = {
    headers: { "content-type": CONSTANTS.MIME_CE_BATCH },
    body: `[${batch.map((e) => HTTP.structured(e).body).join(",")}]`,
  };
  const answers = {
    structured: await structured(deviceUsed("js-structured"), auth),
    binary: await binary(deviceUsed("js-binary"), auth),
    binary_again: await binary(deviceUsed("js-binary"), auth),
    batched: await httpTransport(endpoint)(batched, auth),
  };
  const bodies = Object.fromEntries(
    Object.entries(answers).map(([mode, answer]) => [mode, JSON.parse(answer.body)]));
  console.log(JSON.stringify(bodies));
}

main().catch((err) => { console.error(err); process.exit(1); });
