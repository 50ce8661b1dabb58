// Where the node-local DNS server listens: the pod bridge's gateway, the first address of the node's
// pod CIDR (host-local IPAM's default gateway, which the CNI bridge plugin puts on the bridge). Every pod
// on the node reaches it directly and the service proxy sends the cluster DNS IP there. The bridge only
// appears with the first pod sandbox, so the agent creates it (with the gateway address) up front; the
// bridge plugin adopts an existing bridge that already has the gateway address.
import { execFile } from 'node:child_process';
import { isIPv4 } from 'node:net';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** `10.42.1.0/24` → `{ address: '10.42.1.1', prefix: 24 }`. */
export function podGateway(podCidr: string): { address: string; prefix: number } {
  const [net, bits] = podCidr.split('/');
  const prefix = Number(bits);
  if (!net || !Number.isInteger(prefix)) throw new Error(`not a CIDR: ${podCidr}`);
  if (isIPv4(net)) {
    const n = net.split('.').reduce((a, o) => (a << 8n) | BigInt(Number(o)), 0n);
    const mask = prefix === 0 ? 0n : ((1n << 32n) - 1n) ^ ((1n << BigInt(32 - prefix)) - 1n);
    const gw = (n & mask) + 1n;
    return { address: [24n, 16n, 8n, 0n].map((s) => String((gw >> s) & 255n)).join('.'), prefix };
  }
  // IPv6: expand, add one, print in full hextets (valid, if not the shortest form).
  const [head = '', tail = ''] = net.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = net.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  let v = groups.reduce((a, g) => (a << 16n) | BigInt(parseInt(g || '0', 16)), 0n);
  const mask = ((1n << 128n) - 1n) ^ ((1n << BigInt(128 - prefix)) - 1n);
  v = (v & mask) + 1n;
  const out: string[] = [];
  for (let i = 7; i >= 0; i--) out.push(((v >> BigInt(i * 16)) & 0xffffn).toString(16));
  return { address: out.join(':'), prefix };
}

/** Creates the bridge when missing, gives it the gateway address when it lacks it, and brings it up. */
export async function ensureBridgeAddress(bridge: string, address: string, prefix: number): Promise<void> {
  const exists = await run('ip', ['link', 'show', 'dev', bridge]).then(() => true, () => false);
  if (!exists) {
    await run('ip', ['link', 'add', 'name', bridge, 'type', 'bridge']).catch((e: { stderr?: string }) => {
      if (!/File exists/.test(e.stderr ?? '')) throw e;    // the CNI plugin made it meanwhile
    });
  }
  const { stdout } = await run('ip', ['-o', 'addr', 'show', 'dev', bridge]);
  if (!stdout.split('\n').some((l) => l.includes(` ${address}/`))) {
    await run('ip', ['addr', 'add', `${address}/${prefix}`, 'dev', bridge]).catch((e: { stderr?: string }) => {
      if (!/File exists/.test(e.stderr ?? '')) throw e;
    });
  }
  await run('ip', ['link', 'set', bridge, 'up']);
}
