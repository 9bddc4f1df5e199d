'use strict';
// The scenario of ../README.md, as a Node.js client of the catalog gateway.
// Run it with run.sh, which installs the dependencies first.

const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');
const googleProtoFiles = require('google-proto-files');

const GATEWAY = process.env.CATALOG_GATEWAY || 'localhost:50051';
const BACKEND = process.env.CATALOG_BACKEND || 'localhost:50052';

// Every call gets a deadline: without one a call to a stuck server waits
// forever. 5 s unless a step needs its own.
const DEADLINE_MS = 5000;

// What a stale first answer most likely means.
const STILL_OPEN =
  'is the circuit still open from an earlier run? Wait 10 s, or reset it: see examples/clients/README.md';

// The contract, loaded from the repository's proto/ at run time: no code is
// generated. longs: String keeps int64 values (Money.units) exact.
const definition = protoLoader.loadSync(
  ['catalog/v1/catalog.proto', 'backend/v1/chaos.proto'],
  {
    includeDirs: [path.resolve(__dirname, '../../../proto')],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  },
);
const { catalog: catalogPackage, backend: backendPackage } = grpc.loadPackageDefinition(definition);

// google.rpc.Status and google.rpc.RetryInfo, to decode the rich error details
// of step 6. google-proto-files ships their .proto files; their imports
// (google/protobuf/any.proto...) are relative to the root of its tree, as with
// protoc's -I.
const googleRoot = googleProtoFiles.getProtoPath('..');
const googleRpc = new protobuf.Root();
googleRpc.resolvePath = (_origin, target) => path.join(googleRoot, target);
googleRpc.loadSync(
  ['google/rpc/status.proto', 'google/rpc/error_details.proto'],
  { keepCase: true },
);
const RpcStatus = googleRpc.lookupType('google.rpc.Status');
const RetryInfo = googleRpc.lookupType('google.rpc.RetryInfo');
// An Any names the type of its value with a URL; this prefix is the usual one.
const RETRY_INFO_URL = 'type.googleapis.com/google.rpc.RetryInfo';

/** An expectation of the scenario that the answer did not meet. */
class Unmet extends Error {}

function expect(condition, expected, got) {
  if (!condition) throw new Unmet(`expected ${expected}, got ${got}`);
}

/**
 * Calls a unary method and waits for the end of the call. Resolves (never
 * rejects) with { response, error, metadata }: error is a grpc-js
 * ServiceError (code, details, and the trailers in .metadata), metadata a
 * plain object of the response metadata.
 */
function call(client, method, request, timeoutMs = DEADLINE_MS) {
  return new Promise((resolve) => {
    let headers = new grpc.Metadata();
    let outcome;
    const options = { deadline: Date.now() + timeoutMs };
    const pending = client[method](request, options, (error, response) => {
      outcome = { error, response };
    });
    pending.on('metadata', (metadata) => {
      headers = metadata;
    });
    // 'status' comes last, after the callback, and carries the trailers.
    pending.on('status', (status) => {
      resolve({ ...outcome, metadata: merge(headers, status.metadata) });
    });
  });
}

/**
 * The gateway sends x-cache and friends in the response headers on success;
 * on an error there are no headers and they come in the trailers. Read both,
 * headers first.
 */
function merge(headers, trailers) {
  return { ...trailers.getMap(), ...headers.getMap() };
}

async function callOk(client, method, request, timeoutMs) {
  const result = await call(client, method, request, timeoutMs);
  expect(!result.error, `an answer to ${method}`, result.error && describe(result.error));
  return result;
}

/** Calls a method that must fail with the code named codeName (NOT_FOUND...). */
async function callError(client, method, request, codeName, timeoutMs) {
  const result = await call(client, method, request, timeoutMs);
  expect(result.error, `${codeName} from ${method}`, 'OK');
  expect(result.error.code === grpc.status[codeName], codeName, describe(result.error));
  return result;
}

function describe(error) {
  return `${grpc.status[error.code]}: ${error.details}`;
}

/**
 * Money as a decimal string, "12.34 USD", from its integers: no float.
 * units arrives as a string (longs: String): BigInt keeps it exact. units
 * and nanos carry the same sign, so the sign comes from either and the
 * digits from their absolute values. At least two decimals are shown, more
 * when nanos has more.
 */
function formatMoney({ units, nanos, currency_code: currency }) {
  const whole = BigInt(units);
  const negative = whole < 0n || nanos < 0;
  const absWhole = whole < 0n ? -whole : whole;
  const fraction = String(Math.abs(nanos)).padStart(9, '0').replace(/0+$/, '').padEnd(2, '0');
  return `${negative ? '-' : ''}${absWhole}.${fraction} ${currency}`;
}

/** A google.protobuf.Duration as in its JSON form, "9.5s", without floats. */
function formatDuration({ seconds, nanos }) {
  const fraction = String(nanos).padStart(9, '0').replace(/0+$/, '');
  return `${seconds}${fraction ? `.${fraction}` : ''}s`;
}

function setFaults(chaos, faults) {
  // SetFaults replaces all the faults: fields left out are cleared.
  return callOk(chaos, 'SetFaults', faults);
}

async function getProduct(catalog) {
  const { response, metadata } = await callOk(catalog, 'GetProduct', { id: 'sku-1001' });
  const { product } = response;
  expect(product?.id === 'sku-1001', 'product sku-1001', `product ${product?.id}`);
  expect(
    metadata['x-cache'] === 'miss',
    'x-cache: miss',
    `x-cache: ${metadata['x-cache']}, x-circuit-state: ${metadata['x-circuit-state']} (${STILL_OPEN})`,
  );
  return `${product.id} "${product.title}" at ${formatMoney(product.price)}, x-cache: miss`;
}

async function pageThrough(catalog) {
  const ids = [];
  let pages = 0;
  let token = '';
  do {
    const request = { page_size: 10, page_token: token };
    const { response } = await callOk(catalog, 'ListProducts', request);
    pages += 1;
    for (const { id } of response.products) {
      // Strictly increasing also means no id twice.
      const last = ids[ids.length - 1];
      expect(last === undefined || id > last, `an id after "${last}"`, `"${id}"`);
      ids.push(id);
    }
    token = response.next_page_token;
    // A server that kept sending tokens would loop forever: bound it.
    expect(!token || pages < 1000, 'a last page within 1000 pages', 'more');
  } while (token);
  expect(pages > 1, 'more than one page', `${pages} page`);
  return `${ids.length} products in ${pages} pages`;
}

async function unknownId(catalog) {
  const request = { id: 'sku-does-not-exist' };
  const { error } = await callError(catalog, 'GetProduct', request, 'NOT_FOUND');
  return `NOT_FOUND (${error.details})`;
}

async function ownDeadline(catalog, chaos) {
  await setFaults(chaos, { latency_ms: 3000 });
  const started = process.hrtime.bigint();
  // sku-1003 has not been asked for, so the gateway has no cached answer to
  // fall back on: the caller's deadline is what ends the call.
  await callError(catalog, 'GetProduct', { id: 'sku-1003' }, 'DEADLINE_EXCEEDED', 500);
  const tookMs = Number(process.hrtime.bigint() - started) / 1e6;
  const took = `${(tookMs / 1000).toFixed(3)} s`;
  expect(tookMs < 2000, "an answer well before the backend's 3 s", `one after ${took}`);
  return `DEADLINE_EXCEEDED after ${took}`;
}

async function backendFails(catalog, chaos) {
  await setFaults(chaos, { error_rate: 1 });
  let metadata;
  for (let calls = 1; calls <= 20; calls += 1) {
    let response;
    ({ response, metadata } = await callOk(catalog, 'GetProduct', { id: 'sku-1001' }));
    // The backend fails every call, so each answer is the one cached in
    // step 1, and says so.
    const productId = response.product?.id;
    expect(productId === 'sku-1001', 'product sku-1001', `product ${productId}`);
    expect(metadata['x-cache'] === 'stale', 'x-cache: stale', `x-cache: ${metadata['x-cache']}`);
    const age = metadata['x-cache-age'];
    expect(/^[0-9]+$/.test(age || ''), 'x-cache-age in whole seconds', `x-cache-age: ${age}`);
    if (metadata['x-circuit-state'] === 'open') {
      return `after ${calls} calls: x-cache: stale, x-cache-age: ${age}, x-circuit-state: open`;
    }
  }
  const state = metadata['x-circuit-state'];
  throw new Unmet(`expected x-circuit-state: open within 20 calls, got ${state}`);
}

async function circuitOpen(catalog) {
  const { error } = await callError(catalog, 'GetProduct', { id: 'sku-never-cached' }, 'UNAVAILABLE');
  // The rich error model: a google.rpc.Status in the grpc-status-details-bin
  // trailer, whose details are google.protobuf.Any messages.
  const [bytes] = error.metadata.get('grpc-status-details-bin');
  expect(bytes, 'status details (grpc-status-details-bin)', 'none');
  const status = RpcStatus.decode(bytes);
  const typeUrls = status.details.map((any) => any.type_url);
  const detail = status.details.find((any) => any.type_url === RETRY_INFO_URL);
  expect(detail, 'a google.rpc.RetryInfo detail', JSON.stringify(typeUrls));
  const retryInfo = RetryInfo.toObject(RetryInfo.decode(detail.value), {
    longs: String,
    defaults: true,
  });
  const delay = retryInfo.retry_delay;
  const positive = delay && (BigInt(delay.seconds) > 0n || delay.nanos > 0);
  expect(positive, 'a retry_delay above zero', delay ? formatDuration(delay) : 'none');
  return `UNAVAILABLE, retry in ${formatDuration(delay)}`;
}

/** Step 7: clears the faults; true when it did. */
async function cleanUp(chaos) {
  try {
    await setFaults(chaos, {});
  } catch (error) {
    if (!(error instanceof Unmet)) throw error;
    console.error(`7. clean up: FAILED: ${error.message}`);
    return false;
  }
  console.log('7. clean up: faults cleared');
  return true;
}

/** Runs the steps in order, one line each; false at the first that fails. */
async function runSteps(steps) {
  for (const [index, [name, run]] of steps.entries()) {
    try {
      console.log(`${index + 1}. ${name}: ${await run()}`);
    } catch (error) {
      if (!(error instanceof Unmet)) throw error;
      console.error(`${index + 1}. ${name}: FAILED: ${error.message}`);
      return false;
    }
  }
  return true;
}

async function main() {
  const insecure = grpc.credentials.createInsecure();
  const catalog = new catalogPackage.v1.CatalogService(GATEWAY, insecure);
  const chaos = new backendPackage.v1.ChaosService(BACKEND, insecure);
  const steps = [
    ['get a product', () => getProduct(catalog)],
    ['page through the catalog', () => pageThrough(catalog)],
    ['an unknown id', () => unknownId(catalog)],
    ['a deadline of its own', () => ownDeadline(catalog, chaos)],
    ['the backend fails', () => backendFails(catalog, chaos)],
    ['nothing cached, circuit open', () => circuitOpen(catalog)],
  ];
  let passed;
  let cleaned;
  try {
    passed = await runSteps(steps);
  } finally {
    // Also after a failed step (or a crash): the backend must not be left
    // failing for whoever uses it next.
    cleaned = await cleanUp(chaos);
    catalog.close();
    chaos.close();
  }
  if (!(passed && cleaned)) return 1;
  console.log('scenario passed');
  return 0;
}

main().then(
  (code) => { process.exitCode = code; },
  (error) => { console.error(error); process.exitCode = 1; },
);
