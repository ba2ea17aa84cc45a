// BullMQ's side of the queue comparison (benches/queue_vs_bullmq/run.sh), the same workload
// as kermes's benches/mq_throughput.rs: 64 producers adding `messages` jobs while one worker
// with a no-op processor at the given concurrency takes them (finished jobs removed, as
// kermes removes finished messages); or the pickup latency on an idle queue (add -> the
// processor starts), 1000 times. Prints one tab-separated line like mq_throughput's MQ_TSV.
//
//   node bullmq.mjs throughput <port> <concurrency> <messages>
//   node bullmq.mjs pickup <port>
import { Queue, Worker } from 'bullmq';
import IORedis from 'ioredis';

const [mode, portArg, concurrencyArg, messagesArg] = process.argv.slice(2);
const port = Number(portArg);
const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
const PRODUCERS = 64;
const PICKUPS = 1000;

const info = new IORedis(port);
async function serverCpu() {
  const text = await info.info('cpu');
  const get = (k) => Number((text.match(new RegExp(`${k}:([0-9.]+)`)) || [0, 0])[1]);
  return get('used_cpu_user') + get('used_cpu_sys');
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const jobOptions = { removeOnComplete: true, removeOnFail: true };

async function throughput(concurrency, messages) {
  const name = `bull-${concurrency}`;
  const queue = new Queue(name, { connection });
  await queue.obliterate({ force: true });
  let done = 0;
  let finish;
  const finished = new Promise((r) => { finish = r; });
  const worker = new Worker(name, async () => {}, { connection, concurrency });
  worker.on('completed', () => { if (++done === messages) finish(); });
  await worker.waitUntilReady();
  const cpu0 = await serverCpu();
  const own0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let next = 0;
  const producer = async () => {
    while (next < messages) {
      const i = next++;
      await queue.add('j', String(i), jobOptions);
    }
  };
  await Promise.all(Array.from({ length: PRODUCERS }, producer));
  await finished;
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const server = (await serverCpu()) - cpu0;
  const own = process.cpuUsage(own0);
  const ownSecs = (own.user + own.system) / 1e6;
  const per = (cpu) => ((cpu / messages) * 1e6).toFixed(1);
  console.log(`bullmq\tthroughput\t${concurrency}\t${(messages / wall).toFixed(0)}\t${per(server)}\t${per(ownSecs)}`);
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
}

async function pickup() {
  const name = 'bull-pickup';
  const queue = new Queue(name, { connection });
  await queue.obliterate({ force: true });
  let started;
  const worker = new Worker(name, async () => { started(process.hrtime.bigint()); }, { connection, concurrency: 1 });
  await worker.waitUntilReady();
  await sleep(200);
  const latencies = [];
  for (let i = 0; i < PICKUPS; i++) {
    // Let the worker go idle (blocked waiting for a job) before each add.
    await sleep(2);
    const picked = new Promise((r) => { started = r; });
    const t = process.hrtime.bigint();
    await queue.add('j', String(i), jobOptions);
    latencies.push(Number((await picked) - t) / 1e6);
  }
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))];
  console.log(`bullmq\tpickup\t1\t${pct(0.5).toFixed(3)}\t${pct(0.99).toFixed(3)}\t${latencies[latencies.length - 1].toFixed(3)}`);
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
}

if (mode === 'throughput') {
  await throughput(Number(concurrencyArg), Number(messagesArg));
} else if (mode === 'pickup') {
  await pickup();
} else {
  console.error('usage: node bullmq.mjs throughput <port> <concurrency> <messages> | pickup <port>');
  process.exit(2);
}
await info.quit();
process.exit(0);
