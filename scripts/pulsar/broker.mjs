// Starts and stops an Apache Pulsar 4.0.x standalone broker for the tests, in
// its own JVM, on free loopback ports, with a temp data dir, capped memory,
// token auth and a TLS port. Used by test/run.mjs and the restart test; also a
// CLI: `node scripts/pulsar/broker.mjs` starts one and prints its env.
import { execFileSync, spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const here = dirname(new URL(import.meta.url).pathname);
export const PULSAR_VERSION = '4.0.7';
const READY_TIMEOUT_MS = 180_000;
const STOP_TIMEOUT_MS = 60_000;

/** Classpath of the broker jars in ~/.m2, resolved once by Maven (offline after install.sh). */
export function brokerClasspath() {
  const cacheDir = join(homedir(), '.m2', 'kakehi');
  const file = join(cacheDir, `pulsar-${PULSAR_VERSION}.classpath`);
  if (!existsSync(file)) {
    mkdirSync(cacheDir, { recursive: true });
    execFileSync(
      'mvn',
      [
        '-q',
        '-o',
        '-s',
        join(here, 'settings.xml'),
        '-f',
        join(here, 'pom.xml'),
        'dependency:build-classpath',
        `-Dmdep.outputFile=${file}`,
      ],
      { stdio: 'inherit' },
    );
  }
  return readFileSync(file, 'utf8').trim();
}

async function freePort() {
  return await new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => resolve(addr.port));
    });
  });
}

function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

/** An HS256 JWT, as Pulsar's AuthenticationProviderToken accepts with tokenSecretKey. */
export function signToken(secret, claims) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest();
  return `${head}.${body}.${b64url(sig)}`;
}

function makeTlsFiles(dir) {
  const ossl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ossl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=kakehi-test-ca',
  );
  ossl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'broker.key');
  ossl('req', '-new', '-key', 'broker.key', '-out', 'broker.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  ossl(
    'x509',
    '-req',
    '-in',
    'broker.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'broker.pem',
    '-days',
    '2',
    '-extfile',
    'ext.cnf',
  );
  return { ca: join(dir, 'ca.pem'), cert: join(dir, 'broker.pem'), key: join(dir, 'broker.key') };
}

const LOG4J2 = `<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders><Console name="out" target="SYSTEM_OUT"><PatternLayout pattern="%d{HH:mm:ss.SSS} %-5level %c{1} - %msg%n"/></Console></Appenders>
  <Loggers><Root level="info"><AppenderRef ref="out"/></Root></Loggers>
</Configuration>
`;

export class Broker {
  /** @param {{ extraConf?: string[] }} [opts] extra standalone.conf lines */
  constructor(opts = {}) {
    this.extraConf = opts.extraConf ?? [];
    this.dir = mkdtempSync(join(tmpdir(), 'kakehi-pulsar-'));
    this.proc = undefined;
    this.exited = undefined;
  }

  /** Writes config, certs and token once; ports stay the same across restarts. */
  async prepare() {
    const [port, tlsPort, webPort, bkPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    Object.assign(this, { port, tlsPort, webPort, bkPort });
    const tls = makeTlsFiles(this.dir);
    this.caFile = tls.ca;
    const secret = randomBytes(32);
    this.secret = secret;
    this.token = signToken(secret, { sub: 'admin' });
    const conf = [
      'clusterName=standalone',
      'bindAddress=127.0.0.1',
      'advertisedAddress=127.0.0.1',
      `brokerServicePort=${port}`,
      `brokerServicePortTls=${tlsPort}`,
      `webServicePort=${webPort}`,
      `tlsCertificateFilePath=${tls.cert}`,
      `tlsKeyFilePath=${tls.key}`,
      `tlsTrustCertsFilePath=${tls.ca}`,
      'managedLedgerDefaultEnsembleSize=1',
      'managedLedgerDefaultWriteQuorum=1',
      'managedLedgerDefaultAckQuorum=1',
      'loadManagerClassName=org.apache.pulsar.broker.loadbalance.NoopLoadManager',
      'loadBalancerEnabled=false',
      'webSocketServiceEnabled=false',
      'allowAutoTopicCreationType=non-partitioned',
      'brokerDeleteInactiveTopicsEnabled=false',
      'transactionCoordinatorEnabled=false',
      'systemTopicEnabled=true',
      'topicLevelPoliciesEnabled=true',
      'authenticationEnabled=true',
      'authorizationEnabled=false',
      'authenticationProviders=org.apache.pulsar.broker.authentication.AuthenticationProviderToken',
      `tokenSecretKey=data:;base64,${secret.toString('base64')}`,
      'superUserRoles=admin',
      // The broker checks token expiry this often and sends AUTH_CHALLENGE on expiry.
      'authenticationRefreshCheckSeconds=1',
      'brokerClientAuthenticationPlugin=org.apache.pulsar.client.impl.auth.AuthenticationToken',
      `brokerClientAuthenticationParameters=token:${this.token}`,
      'journalSyncData=false',
      'allowLoopback=true',
      'dbStorage_writeCacheMaxSizeMb=32',
      'dbStorage_readAheadCacheMaxSizeMb=32',
      'dbStorage_rocksDB_blockCacheSize=16777216',
      'managedLedgerCacheSizeMB=64',
      'httpServerEnabled=false',
      ...this.extraConf,
      '',
    ].join('\n');
    writeFileSync(join(this.dir, 'standalone.conf'), conf);
    writeFileSync(join(this.dir, 'log4j2.xml'), LOG4J2);
  }

  get env() {
    return {
      PULSAR_URL: `pulsar://127.0.0.1:${this.port}`,
      PULSAR_TLS_URL: `pulsar+ssl://127.0.0.1:${this.tlsPort}`,
      PULSAR_ADMIN_URL: `http://127.0.0.1:${this.webPort}`,
      PULSAR_TOKEN: this.token,
      PULSAR_TOKEN_SECRET: this.secret.toString('base64'),
      PULSAR_TLS_CA: this.caFile,
    };
  }

  /** Starts the JVM and resolves once the admin API answers; returns ms taken. */
  async start() {
    if (this.port === undefined) await this.prepare();
    const t0 = Date.now();
    const args = [
      '-Xms256m',
      '-Xmx1g',
      '-XX:MaxDirectMemorySize=512m',
      '-XX:+UseG1GC',
      '-XX:+ExitOnOutOfMemoryError',
      '-Djava.net.preferIPv4Stack=true',
      '--add-opens',
      'java.base/java.nio=ALL-UNNAMED',
      '--add-opens',
      'java.base/jdk.internal.misc=ALL-UNNAMED',
      '--add-opens',
      'java.base/java.io=ALL-UNNAMED',
      '--add-opens',
      'java.base/java.util.zip=ALL-UNNAMED',
      '--add-opens',
      'java.management/sun.management=ALL-UNNAMED',
      '--add-opens',
      'jdk.management/com.sun.management.internal=ALL-UNNAMED',
      '--add-opens',
      'java.base/jdk.internal.platform=ALL-UNNAMED',
      '-Dio.netty.tryReflectionSetAccessible=true',
      '-Dbookkeeper.metadata.bookie.drivers=org.apache.pulsar.metadata.bookkeeper.PulsarMetadataBookieDriver',
      '-Dbookkeeper.metadata.client.drivers=org.apache.pulsar.metadata.bookkeeper.PulsarMetadataClientDriver',
      `-Dlog4j.configurationFile=${join(this.dir, 'log4j2.xml')}`,
      '-cp',
      brokerClasspath(),
      'org.apache.pulsar.PulsarStandaloneStarter',
      '--config',
      join(this.dir, 'standalone.conf'),
      '-nfw',
      '-nss',
      '--bookkeeper-port',
      String(this.bkPort),
      '-a',
      '127.0.0.1',
    ];
    const { openSync } = await import('node:fs');
    const log = openSync(join(this.dir, 'pulsar.log'), 'a');
    const proc = spawn('java', args, { cwd: this.dir, stdio: ['ignore', log, log] });
    this.proc = proc;
    this.exited = new Promise((res) => proc.on('exit', (code, sig) => res(code ?? sig)));
    let gone = false;
    this.exited.then(() => {
      gone = true;
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (gone) throw new Error(`pulsar broker exited during start; see ${join(this.dir, 'pulsar.log')}`);
      try {
        const res = await fetch(`http://127.0.0.1:${this.webPort}/admin/v2/namespaces/public`, {
          headers: { authorization: `Bearer ${this.token}` },
          signal: AbortSignal.timeout(5000),
        });
        const text = await res.text();
        if (res.ok && text.includes('public/default')) {
          this.startMs = Date.now() - t0;
          return this.startMs;
        }
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    await this.stop();
    throw new Error(
      `pulsar broker not ready after ${READY_TIMEOUT_MS} ms; see ${join(this.dir, 'pulsar.log')}`,
    );
  }

  /** Resident memory of the JVM in bytes (Linux /proc). */
  rssBytes() {
    if (!this.proc?.pid) return 0;
    const status = readFileSync(`/proc/${this.proc.pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) * 1024 : 0;
  }

  /** SIGTERM (the broker's shutdown hook closes ledgers and the metadata store), SIGKILL after a timeout. */
  async stop() {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
    this.proc = undefined;
  }

  async destroy() {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const b = new Broker();
  const ms = await b.start();
  console.log(
    JSON.stringify(
      { ...b.env, startMs: ms, rssMiB: Math.round(b.rssBytes() / 1048576), dir: b.dir },
      null,
      2,
    ),
  );
  const shutdown = async () => {
    await b.destroy();
    process.exit(0);
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}
