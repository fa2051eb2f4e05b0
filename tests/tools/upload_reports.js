#!/usr/bin/env node
// upload_reports.js: uploads report files with the official
// @azure/storage-blob SDK, as Spectra Detect would write them.
//
//   node upload_reports.js CONN CONTAINER DIR [--prefix P] [--markers]
//                          [--concurrency N]
//     Creates CONTAINER if needed and uploads every file under DIR, named
//     by its path relative to DIR (under prefix P). With --markers, also
//     creates an ADLS-style directory marker (a zero-length blob with
//     metadata hdi_isfolder=true) for every folder, as a hierarchical
//     namespace account lists them. Prints "uploaded N" at the end.
//   node upload_reports.js CONN CONTAINER --list
//     Prints the name of every blob in CONTAINER, one a line.
'use strict';
const fs = require('fs');
const path = require('path');
const { BlobServiceClient } = require('@azure/storage-blob');

function walk(dir, base = dir, out = []) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, base, out);
    else if (e.isFile()) out.push(path.relative(base, p).split(path.sep).join('/'));
  }
  return out.sort();
}

async function main() {
  const [conn, container, dir, ...rest] = process.argv.slice(2);
  if (!conn || !container || !dir) {
    console.error('usage: upload_reports.js CONN CONTAINER DIR [--prefix P] [--markers] [--concurrency N]');
    process.exit(2);
  }
  let prefix = '', markers = false, conc = 16;
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--prefix') prefix = rest[++i];
    else if (rest[i] === '--markers') markers = true;
    else if (rest[i] === '--concurrency') conc = parseInt(rest[++i], 10);
  }
  const svc = BlobServiceClient.fromConnectionString(conn);
  const cc = svc.getContainerClient(container);
  if (dir === '--list') {
    for await (const b of cc.listBlobsFlat()) console.log(b.name);
    return;
  }
  await cc.createIfNotExists();
  const files = walk(dir);
  const folders = new Set();
  for (const f of files) {
    const parts = (prefix + f).split('/');
    for (let i = 1; i < parts.length; i++) folders.add(parts.slice(0, i).join('/'));
  }
  const jobs = files.map((f) => async () => {
    const data = fs.readFileSync(path.join(dir, f));
    await cc.getBlockBlobClient(prefix + f).uploadData(data, {
      blobHTTPHeaders: { blobContentType: 'application/json' },
    });
  });
  if (markers) {
    for (const d of folders) {
      jobs.push(async () => {
        await cc.getBlockBlobClient(d).uploadData(Buffer.alloc(0), {
          metadata: { hdi_isfolder: 'true' },
        });
      });
    }
  }
  let next = 0;
  await Promise.all(Array.from({ length: conc }, async () => {
    while (next < jobs.length) await jobs[next++]();
  }));
  console.log(`uploaded ${files.length}`);
}

main().catch((e) => { console.error(e.message || e); process.exit(1); });
