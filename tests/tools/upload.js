#!/usr/bin/env node
// upload.js: test fixtures for the storage integration test, written with
// the official @azure/storage-blob SDK so that what the C client reads was
// produced by Microsoft's own client, not by our code.
//
//   node upload.js populate CONN CONTAINER COUNT BIGBYTES MANIFEST
//       Creates CONTAINER and uploads COUNT report-like blobs in nested
//       folders (in/YYYY/MM/DD/...), an ADLS-style zero-length directory
//       marker (metadata hdi_isfolder=true) for every folder, one gzip
//       blob, a few names with spaces, XML specials and non-ASCII letters,
//       and big/over-cap.bin of BIGBYTES bytes. Writes MANIFEST: one line
//       "sha256 size name" per file blob (markers excluded), sorted by name.
//   node upload.js sas CONN CONTAINER container|account PERMS
//       Prints a SAS token (no leading '?') valid for one hour.
//   node upload.js put CONN CONTAINER NAME TEXT
//       Uploads (or overwrites) one blob and prints its ETag.
'use strict';
const crypto = require('crypto');
const zlib = require('zlib');
const {
  BlobServiceClient, StorageSharedKeyCredential, generateBlobSASQueryParameters,
  generateAccountSASQueryParameters, ContainerSASPermissions,
  AccountSASPermissions, AccountSASServices, AccountSASResourceTypes,
} = require('@azure/storage-blob');

function parseConn(conn) {
  const kv = {};
  for (const part of conn.split(';')) {
    const i = part.indexOf('=');
    if (i > 0) kv[part.slice(0, i)] = part.slice(i + 1);
  }
  return kv;
}

async function pool(items, n, fn) {
  let next = 0;
  const workers = Array.from({ length: n }, async () => {
    while (next < items.length) {
      const item = items[next++];
      await fn(item);
    }
  });
  await Promise.all(workers);
}

function report(i) {
  const t = 1795996800 + i * 37;
  return JSON.stringify({
    task_id: 100000 + i, submitted: t - 5, processed: t,
    worker_hostname: 'worker-' + (i % 7),
    tc_report: [{ index: 0, info: { file: { file_name: 'sample-' + i + '.exe',
      size: 1000 + i } }, classification: { classification: i % 4 } }],
  }) + '\n';
}

async function populate(conn, container, count, bigBytes, manifestPath) {
  const svc = BlobServiceClient.fromConnectionString(conn);
  const cc = svc.getContainerClient(container);
  await cc.createIfNotExists();
  const files = [];   // [name, Buffer]
  const folders = new Set();
  for (let i = 0; i < count; i++) {
    const d = new Date((1795996800 + i * 600) * 1000);
    const dir = 'in/' + d.getUTCFullYear() + '/' +
      String(d.getUTCMonth() + 1).padStart(2, '0') + '/' +
      String(d.getUTCDate()).padStart(2, '0');
    files.push([dir + '/report-' + String(i).padStart(6, '0') + '.json',
                Buffer.from(report(i))]);
    let p = '';
    for (const seg of dir.split('/')) {
      p = p ? p + '/' + seg : seg;
      folders.add(p);
    }
  }
  files.push(['in/special/a b & <c> \'d\' "e".json', Buffer.from(report(1))]);
  files.push(['in/special/\u00e9t\u00e9/\u65e5\u672c\u8a9e-\u00fc.json',
              Buffer.from(report(2))]);
  files.push(['in/special/plus+percent%25.json', Buffer.from(report(3))]);
  files.push(['in/gz/report.json.gz', zlib.gzipSync(Buffer.from(report(4)))]);
  folders.add('in/special'); folders.add('in/gz');
  const big = Buffer.alloc(bigBytes);
  for (let i = 0; i < bigBytes; i++) big[i] = (i * 31 + 7) & 0xff;
  files.push(['big/over-cap.bin', big]);
  folders.add('big');

  await pool(files, 32, async ([name, data]) => {
    await cc.getBlockBlobClient(name).upload(data, data.length);
  });
  await pool([...folders], 32, async (name) => {
    await cc.getBlockBlobClient(name).upload(Buffer.alloc(0), 0,
      { metadata: { hdi_isfolder: 'true' } });
  });
  const lines = files.map(([name, data]) =>
    crypto.createHash('sha256').update(data).digest('hex') + ' ' +
    data.length + ' ' + name);
  lines.sort((a, b) => {
    const x = a.split(' ').slice(2).join(' '), y = b.split(' ').slice(2).join(' ');
    return x < y ? -1 : x > y ? 1 : 0;
  });
  require('fs').writeFileSync(manifestPath, lines.join('\n') + '\n');
  console.log(files.length + ' blobs, ' + folders.size + ' directory markers');
}

function sas(conn, container, kind, perms) {
  const kv = parseConn(conn);
  const cred = new StorageSharedKeyCredential(kv.AccountName, kv.AccountKey);
  const startsOn = new Date(Date.now() - 5 * 60 * 1000);
  const expiresOn = new Date(Date.now() + 60 * 60 * 1000);
  let q;
  if (kind === 'container') {
    q = generateBlobSASQueryParameters({ containerName: container,
      permissions: ContainerSASPermissions.parse(perms), startsOn, expiresOn,
    }, cred);
  } else {
    q = generateAccountSASQueryParameters({
      permissions: AccountSASPermissions.parse(perms),
      services: AccountSASServices.parse('b').toString(),
      resourceTypes: AccountSASResourceTypes.parse('co').toString(),
      startsOn, expiresOn,
    }, cred);
  }
  console.log(q.toString());
}

async function put(conn, container, name, text) {
  const cc = BlobServiceClient.fromConnectionString(conn).getContainerClient(container);
  await cc.createIfNotExists();
  const r = await cc.getBlockBlobClient(name).upload(text, Buffer.byteLength(text));
  console.log(r.etag.replace(/"/g, ''));
}

(async () => {
  const [cmd, ...a] = process.argv.slice(2);
  if (cmd === 'populate') await populate(a[0], a[1], +a[2], +a[3], a[4]);
  else if (cmd === 'sas') sas(a[0], a[1], a[2], a[3]);
  else if (cmd === 'put') await put(a[0], a[1], a[2], a[3]);
  else { console.error('usage: see the header of upload.js'); process.exit(2); }
})().catch((e) => { console.error(e.message || e); process.exit(1); });
