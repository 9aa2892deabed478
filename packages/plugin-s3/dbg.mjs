import { S3Backend, s3ConfigSchema } from './dist/index.js';
import fs from 'node:fs';
const env = JSON.parse(fs.readFileSync('/tmp/s3proto/env.json','utf8'));
const b = new S3Backend(s3ConfigSchema.parse({ bucket: env.STRATA_TEST_S3_BUCKET, endpoint: env.STRATA_TEST_S3_ENDPOINT, region: 'us-east-1', forcePathStyle: true, prefix: 'dbg2', credentials: { accessKeyId: env.STRATA_TEST_S3_ACCESS_KEY_ID, secretAccessKey: env.STRATA_TEST_S3_SECRET_ACCESS_KEY } }));
console.time('put');
await b.put('main/cluster.info', Buffer.from('hello'), { ifNoneMatch: true });
console.timeEnd('put');
console.time('head'); console.log(await b.head('main/cluster.info')); console.timeEnd('head');
