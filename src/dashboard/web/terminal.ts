// An exec terminal: xterm.js over the API's exec WebSocket (v5.channel.k8s.io: one channel byte, then
// data; 0 stdin, 1 stdout, 2 stderr, 3 the final Status, 4 resize). Browsers cannot set headers on a
// WebSocket, so the token travels as the `base64url.bearer.authorization.k8s.io.<token>` subprotocol,
// as the Kubernetes Dashboard and kubectl do; the server reads it for authentication and never echoes it.
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { session } from './api.js';

const enc = new TextEncoder();

function b64url(s: string): string {
  let bin = '';
  for (const b of enc.encode(s)) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Opens a shell in the container inside `box`; returns a function that closes it. */
export function openTerminal(box: HTMLElement, ns: string, pod: string, container: string, command: string[]): () => void {
  box.replaceChildren();
  const dark = matchMedia('(prefers-color-scheme: dark)').matches;
  const term = new Terminal({
    convertEol: false, cursorBlink: true, fontSize: 13, rows: 20,
    theme: dark ? { background: '#111418', foreground: '#e6e6e6' } : { background: '#fbfbfb', foreground: '#1d1d1f', cursor: '#1d1d1f' },
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(box);
  fit.fit();
  const q = new URLSearchParams({ stdin: 'true', stdout: 'true', tty: 'true' });
  if (container) q.set('container', container);
  for (const c of command.length ? command : ['/bin/sh']) q.append('command', c);
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(pod)}/exec?${q}`;
  const ws = new WebSocket(url, ['v5.channel.k8s.io', `base64url.bearer.authorization.k8s.io.${b64url(session.token() ?? '')}`]);
  ws.binaryType = 'arraybuffer';
  const sendChannel = (ch: number, data: Uint8Array) => {
    if (ws.readyState !== WebSocket.OPEN) return;
    const m = new Uint8Array(data.length + 1);
    m[0] = ch;
    m.set(data, 1);
    ws.send(m);
  };
  const resize = () => sendChannel(4, enc.encode(JSON.stringify({ Width: term.cols, Height: term.rows })));
  ws.onopen = () => { resize(); term.focus(); };
  const dec = new TextDecoder();
  ws.onmessage = (ev) => {
    const data = new Uint8Array(ev.data as ArrayBuffer);
    if (data.length < 1) return;
    const ch = data[0];
    const body = data.subarray(1);
    if (ch === 1 || ch === 2) term.write(body);
    else if (ch === 3 && body.length) {
      try {
        const s = JSON.parse(dec.decode(body));
        const exit = s.details?.causes?.find((c: any) => c.reason === 'ExitCode')?.message;
        // A non-zero exit is a Status Failure carrying the code; other failures carry only a message.
        const what = s.status === 'Success' ? 'exited 0' : exit !== undefined ? `exited ${exit}` : `failed: ${s.message ?? 'unknown error'}`;
        term.write(`\r\n\x1b[2m[${what}]\x1b[0m\r\n`);
      } catch { /* not a Status */ }
    }
  };
  ws.onclose = (ev) => term.write(`\r\n\x1b[2m[connection closed${ev.reason ? ': ' + ev.reason : ''}]\x1b[0m\r\n`);
  ws.onerror = () => term.write('\r\n\x1b[31m[could not connect: forbidden or not running?]\x1b[0m\r\n');
  const sub = term.onData((d) => sendChannel(0, enc.encode(d)));
  const ro = new ResizeObserver(() => { fit.fit(); resize(); });
  ro.observe(box);
  return () => { ro.disconnect(); sub.dispose(); ws.close(); term.dispose(); };
}
