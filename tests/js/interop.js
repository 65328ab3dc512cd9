// Drives the official centrifuge-js SDK against a reactive-aiops server, for
// tests/test_server_interop_js.py. Usage: node interop.js <ws-url> <token>
// Prints one JSON object per line for every SDK event; reads commands from stdin:
//   {"op": "rpc", "method": ..., "data": ...}   -> prints {"event": "rpc", "data"| "error"}
//   {"op": "exit"}                              -> disconnects and exits 0
'use strict';
const { Centrifuge } = require('centrifuge');
const WebSocket = require('ws');
const readline = require('readline');

const [url, token] = process.argv.slice(2);
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const client = new Centrifuge(url, {
  token,
  websocket: WebSocket,
  minReconnectDelay: 100,
  maxReconnectDelay: 500,
});
client.on('connected', (ctx) => emit({ event: 'connected', client: ctx.client }));
client.on('disconnected', (ctx) => emit({ event: 'disconnected', code: ctx.code }));
client.on('error', (ctx) => emit({ event: 'error', message: String(ctx.error && ctx.error.message) }));

const sub = client.newSubscription('anomalies');
sub.on('subscribed', (ctx) => emit({
  event: 'subscribed', recovered: ctx.recovered, wasRecovering: ctx.wasRecovering,
  recoverable: ctx.recoverable,
}));
sub.on('publication', (ctx) => emit({ event: 'pub', offset: ctx.offset, id: ctx.data.data.id }));
sub.on('error', (ctx) => emit({ event: 'sub_error', message: String(ctx.error && ctx.error.message) }));
sub.subscribe();
client.connect();

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  const cmd = JSON.parse(line);
  if (cmd.op === 'rpc') {
    try {
      const result = await client.rpc(cmd.method, cmd.data);
      emit({ event: 'rpc', data: result.data });
    } catch (err) {
      emit({ event: 'rpc', error: { code: err.code, message: err.message } });
    }
  } else if (cmd.op === 'exit') {
    client.disconnect();
    process.exit(0);
  }
});
